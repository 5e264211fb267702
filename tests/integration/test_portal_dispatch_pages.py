"""Dispatch in the web UI over ``api_world`` (accounts A and B in au, E in es; each
site with a job on site with its account's employee as the MOSIE): the job page's forms
as the MOSIE (lifecycle buttons, checklist, notes, photos, parts, signature), the
operator's assign and cancel, a customer's timeline — each form applied once per
idempotency key, every refusal a page with its reason, never a 500.

Jobs are made through :class:`DispatchService` as the flow makes them (``seed_job``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.dispatch import DispatchService
from cloud.identity import Role
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.api_world import (
    PART,
    PNG,
    World,
    form_fields,
    page_client,
    private_world,
    seed_job,
    seed_offer,
)

pytestmark = pytest.mark.integration

AU = Scope.of_region(Region.AU)
_KEY = re.compile(r'name="key" value="([A-Za-z0-9_-]+)"')


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_world(postgres_server_url, tmp_path_factory.mktemp("ui-dispatch")) as built:
        yield built


def _service(world: World) -> DispatchService:
    assert world.dispatch is not None
    return world.dispatch


def _actions(world: World, order_id: int) -> list[str]:
    return [str(h.action) for h in _service(world).history(order_id, AU)]


def test_a_retried_accept_applies_once_and_a_refusal_is_a_page(world: World) -> None:
    a = world.tenants["A"]
    job = seed_job(_service(world), a, to="assigned")
    with page_client(world, Role.MOSIE) as client:
        page = client.get(f"/ui/au/workorders/{job}")
        assert page.status_code == 200
        assert 'data-action-form="accept"' in page.text
        assert 'data-action-form="decline"' in page.text
        assert 'data-action-form="resolve"' not in page.text  # not offered before arrival
        url = f"/ui/au/workorders/{job}/act"
        # Decline without its reason (the browser's `required` bypassed): 422, a page.
        bare = client.post(url, data=form_fields(client, action="decline", key="k-decline-1"))
        assert bare.status_code == 422
        assert 'id="refusal"' in bare.text
        # The same accept form posted twice (a double tap, a retry): one history row.
        form = form_fields(client, action="accept", key="k-accept-1")
        first = client.post(url, data=form, follow_redirects=False)
        again = client.post(url, data=form, follow_redirects=False)
        assert (first.status_code, again.status_code) == (303, 303)
        assert _actions(world, job).count("accept") == 1
        # A new accept form on an accepted job: the lifecycle's refusal, 409.
        late = client.post(url, data=form_fields(client, action="accept", key="k-accept-2"))
        assert late.status_code == 409
        assert "accepted" in late.text
    # Another tenant's job is not found for this MOSIE.
    other = world.tenants["B"].work_order
    with page_client(world, Role.MOSIE) as client:
        posted = client.post(
            f"/ui/au/workorders/{other}/act",
            data=form_fields(client, action="resolve", key="k-other-1"),
        )
        assert posted.status_code == 404


def test_on_site_the_mosie_ticks_notes_photographs_uses_parts_and_gets_a_signature(
    world: World,
) -> None:
    a = world.tenants["A"]
    job = seed_job(_service(world), a)  # on site
    base = f"/ui/au/workorders/{job}"
    with page_client(world, Role.MOSIE) as client:
        page = client.get(base)
        keys = _KEY.findall(page.text)
        assert len(keys) == len(set(keys)) >= 5  # one key per rendered form
        # Only the first safety task may be ticked; a work task before it: 409, a page.
        assert page.text.count(f'action="{base}/checklist/') == 1
        early = client.post(
            f"{base}/checklist/isolator-inspected", data=form_fields(client, key="k-tick-0")
        )
        assert early.status_code in (409, 422)
        assert 'id="refusal"' in early.text
        tick = form_fields(client, key="k-tick-1")
        assert client.post(f"{base}/checklist/swms-reviewed", data=tick).status_code == 200
        assert client.post(f"{base}/checklist/swms-reviewed", data=tick).status_code == 200
        assert [t.task_id for t in _service(world).ticks(job, AU)] == ["swms-reviewed"]

        note = client.post(
            f"{base}/notes", data=form_fields(client, key="k-note-1", text="gate code 42")
        )
        assert note.status_code == 200
        assert "gate code 42" in note.text

        photo = client.post(
            f"{base}/photos",
            data=form_fields(client, key="k-photo-1"),
            files={"photo": ("p.png", PNG, "image/png")},
        )
        assert photo.status_code == 200, photo.text[-3000:]
        shown = re.search(rf'<img src="({base}/photos/[0-9]+)"', photo.text)
        assert shown is not None
        assert client.get(shown.group(1)).content == PNG
        not_an_image = client.post(
            f"{base}/photos",
            data=form_fields(client, key="k-photo-2"),
            files={"photo": ("p.png", b"hello", "image/png")},
        )
        assert not_an_image.status_code == 422

        part = client.post(
            f"{base}/parts", data=form_fields(client, key="k-part-1", part_no=PART, quantity=2)
        )
        assert part.status_code == 200

        drawn = "data:image/png;base64," + base64.b64encode(PNG).decode()
        signed = client.post(
            f"{base}/signature",
            data=form_fields(client, key="k-sign-1", signer_name="Ana Customer", drawn=drawn),
            files={"image": ("", b"", "application/octet-stream")},
        )
        assert signed.status_code == 200
        twice = client.post(
            f"{base}/signature",
            data=form_fields(client, key="k-sign-2", signer_name="Ana Customer", drawn=drawn),
            files={"image": ("", b"", "application/octet-stream")},
        )
        assert twice.status_code == 409
        assert "signed" in twice.text
    assert len(_service(world).photos(job, AU)) == 1


def test_a_spanish_reader_sees_the_checklist_and_the_refusals_in_spanish(world: World) -> None:
    a = world.tenants["A"]
    job = seed_job(_service(world), a)  # on site
    base = f"/ui/au/workorders/{job}"
    with page_client(world, Role.MOSIE) as client:
        client.cookies.set("potr_lang", "es")
        page = client.get(base)
        assert page.status_code == 200
        # Titles from the checklist file's Spanish, the safety pre-start first.
        assert (
            "Método de trabajo seguro revisado para trabajos en cubierta y en altura" in page.text
        )
        assert "Seccionador reparado o sustituido" in page.text
        assert "Safe work method statement" not in page.text
        # A checklist refusal and a lifecycle refusal, each worded from the catalogue.
        early = client.post(
            f"{base}/checklist/isolator-repaired", data=form_fields(client, key="k-spanish-1")
        )
        assert early.status_code == 409
        assert "No se hizo: Termine primero la comprobación de seguridad previa." in early.text
        accept = client.post(
            f"{base}/act", data=form_fields(client, action="accept", key="k-spanish-2")
        )
        assert accept.status_code == 409
        assert "No se hizo: Este paso no es posible en el estado actual del trabajo." in accept.text
        resolve = client.post(
            f"{base}/act", data=form_fields(client, action="resolve", key="k-spanish-3")
        )
        assert resolve.status_code == 409
        assert "La comprobación de seguridad previa no está completa." in resolve.text


def test_the_operator_assigns_and_cancels_and_sees_the_board(world: World) -> None:
    a = world.tenants["A"]
    job = seed_job(_service(world), a, to="scheduled")
    with page_client(world, Role.OPERATOR) as client:
        board = client.get("/ui/au/dispatch")
        assert board.status_code == 200
        assert f'data-workorder="{job}"' in board.text
        url = f"/ui/au/workorders/{job}/act"
        assign = form_fields(client, action="assign", key="k-assign-1", technician=a.employee)
        assert client.post(url, data=assign, follow_redirects=False).status_code == 303
        assert _service(world).get(job, AU).assignee == a.employee
        cancel = form_fields(client, action="cancel", key="k-cancel-1", reason="customer moved")
        assert client.post(url, data=cancel, follow_redirects=False).status_code == 303
        assert _service(world).get(job, AU).status == "cancelled"
        # Cancel is refused on site (the MOSIE may be mid-isolation): 409, a page.
        on_site = a.work_order
        refused = client.post(
            f"/ui/au/workorders/{on_site}/act",
            data=form_fields(client, action="cancel", key="k-cancel-2", reason="no"),
        )
        assert refused.status_code == 409


def test_the_mosie_or_the_desk_charge_the_customer_before_completion_only(world: World) -> None:
    a = world.tenants["A"]
    job = seed_job(_service(world), a)  # on site, A's employee its MOSIE
    url = f"/ui/au/workorders/{job}/charge"
    with page_client(world, Role.MOSIE) as client:
        page = client.get(f"/ui/au/workorders/{job}")
        assert "data-charge-form" in page.text
        # A reason needs its note (the browser's checks bypassed): 422, a page.
        bare = client.post(
            url, data=form_fields(client, key="k-charge-0", reason="customer_damage")
        )
        assert bare.status_code == 422
        assert 'id="refusal"' in bare.text
        odd = client.post(url, data=form_fields(client, key="k-charge-1", reason="weather",
                                                 note="hail"))  # fmt: skip
        assert odd.status_code == 422
        form = form_fields(client, key="k-charge-2", reason="customer_damage",
                           note="Dog chewed the DC cable")  # fmt: skip
        assert client.post(url, data=form, follow_redirects=False).status_code == 303
        assert client.post(url, data=form, follow_redirects=False).status_code == 303  # retry
        shown = client.get(f"/ui/au/workorders/{job}")
        assert 'data-charge="customer_damage"' in shown.text
        assert "Dog chewed the DC cable" in shown.text
        other = world.tenants["B"].work_order  # not this MOSIE's job
        theirs = client.post(f"/ui/au/workorders/{other}/charge",
                             data=form_fields(client, key="k-charge-3", reason=""))  # fmt: skip
        assert theirs.status_code == 404
    order = _service(world).get(job, AU)
    assert (order.charge_reason, order.charge_note) == (
        "customer_damage",
        "Dog chewed the DC cable",
    )
    assert _actions(world, job).count("charge") == 1
    for role in (Role.SUPPORT, Role.CUSTOMER):
        with page_client(world, role) as client:
            refused = client.post(url, data=form_fields(client, key="k-charge-4", reason=""))
            assert refused.status_code == 403, role
    with page_client(world, Role.OPERATOR) as client:
        undo = form_fields(client, key="k-charge-5", reason="")
        assert client.post(url, data=undo, follow_redirects=False).status_code == 303
    assert _service(world).get(job, AU).charge_reason is None
    # Completed: the mark can no longer change, and the form is gone.
    service = _service(world)
    service.act(job, "cannot_complete", a.employee, "mosie", idempotency_key="k-charge-cc-1",
                reason="no access")  # fmt: skip
    service.act(job, "cancel", "op", "operator", idempotency_key="k-charge-cc-2",
                reason="customer moved")  # fmt: skip
    with page_client(world, Role.OPERATOR) as client:
        assert "data-charge-form" not in client.get(f"/ui/au/workorders/{job}").text
        late = client.post(url, data=form_fields(client, key="k-charge-6", reason=""))
        assert late.status_code == 409


def test_a_customer_sees_the_timeline_without_the_office_notes(world: World) -> None:
    a = world.tenants["A"]
    job = a.work_order
    _service(world).add_note(job, "internal: dog on site", "E09", "operator", "k-internal-1")
    with page_client(world, Role.CUSTOMER) as client:
        page = client.get(f"/ui/au/workorders/{job}")
        assert page.status_code == 200
        assert "internal: dog on site" not in page.text
        assert 'id="checklist"' not in page.text
        # Who did what is the office's: the history names no one (the door panel names
        # the MOSIE on the way or on site, by design: issue 20).
        history = page.text.split('id="history"', 1)[1].split("</table>", 1)[0]
        assert a.employee not in history
        posted = client.post(
            f"/ui/au/workorders/{job}/notes", data=form_fields(client, key="k-cust-1", text="hi")
        )
        assert posted.status_code == 403


def test_a_customer_chooses_an_offered_window_once_and_can_ask_for_another(world: World) -> None:
    a = world.tenants["A"]
    job = seed_job(_service(world), a, to="assigned")
    # Three days ahead at 09:00 UTC: well past the two hours' lead before confirm-by.
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    seed_offer(world.pool, job, starts)
    with page_client(world, Role.CUSTOMER) as client:
        visits = client.get("/ui/au/visits")
        assert visits.status_code == 200
        assert f'data-workorder="{job}"' in visits.text
        assert "data-choose" in visits.text  # a time to choose
        assert f'data-workorder="{world.tenants["B"].work_order}"' not in visits.text
        page = client.get(f"/ui/au/workorders/{job}")
        assert page.status_code == 200
        assert f'data-window="{starts.isoformat()}"' in page.text
        url = f"/ui/au/workorders/{job}/appointment"
        # A start that was not offered: the service's 422, as a page.
        wrong = client.post(
            url,
            data=form_fields(
                client, key="k-window-0", start=(starts + timedelta(hours=1)).isoformat()
            ),
        )
        assert wrong.status_code == 422
        assert 'id="refusal"' in wrong.text
        # A start without its offset is refused before the service.
        naive = client.post(
            url, data=form_fields(client, key="k-window-n", start="2030-01-01T09:00")
        )
        assert naive.status_code == 422
        # The offered window chosen, the same form posted twice: booked once.
        form = form_fields(client, key="k-window-1", start=starts.isoformat())
        first = client.post(url, data=form, follow_redirects=False)
        again = client.post(url, data=form, follow_redirects=False)
        assert (first.status_code, again.status_code) == (303, 303)
        view = _service(world).appointment(job, AU)
        assert view.appointment is not None
        assert view.appointment.starts == starts
        with world.pool.connection() as conn:
            [(confirmed,)] = conn.execute(
                "SELECT count(*) FROM dispatch.history WHERE work_order_id = %s"
                " AND action = 'confirm_appointment'",
                (job,),
            ).fetchall()
        assert confirmed == 1
        shown = client.get(f"/ui/au/workorders/{job}")
        assert f'data-confirmed="{starts.isoformat()}"' in shown.text
        # Another time asked for: the confirmed window is given up.
        moved = client.post(
            f"{url}/reschedule",
            data=form_fields(client, key="k-resched-1", reason="away that day"),
            follow_redirects=False,
        )
        assert moved.status_code == 303
        assert _service(world).appointment(job, AU).appointment is None
    # Another account's job is not found for this customer; a MOSIE does not book.
    other = world.tenants["B"].work_order
    with page_client(world, Role.CUSTOMER) as client:
        posted = client.post(
            f"/ui/au/workorders/{other}/appointment",
            data=form_fields(client, key="k-window-2", start=starts.isoformat()),
        )
        assert posted.status_code == 404
    with page_client(world, Role.MOSIE) as client:
        posted = client.post(
            f"/ui/au/workorders/{job}/appointment",
            data=form_fields(client, key="k-window-3", start=starts.isoformat()),
        )
        assert posted.status_code == 403
