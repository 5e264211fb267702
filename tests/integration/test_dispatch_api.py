"""The dispatch REST API over the real app (``api_world``: real PostgreSQL, identity's
tokens, the photo directory, a 4096-byte photo limit): a MOSIE's retried action applies
once and answers the same, idempotency keys are required and bounded, photos are
checked for size (413, also while a chunked body streams in) and type (415 for the
declared type, 422 for bytes that are not it), lifecycle refusals carry their code, and
a MOSIE reaches only their own jobs. Who may call what is scenario 14's table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.dispatch import DispatchService
from cloud.events.service_orders import ServiceOrderChanged
from cloud.identity import Role
from cloud.scope import Scope
from contracts.timeutil import utc_now
from contracts.topics import Region
from tests.integration.api_world import (
    PNG,
    World,
    private_world,
    seed_job,
    seed_offer,
)

pytestmark = pytest.mark.integration

#: A JPEG's magic bytes: declared as a PNG, the content check refuses it.
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
AU = "/api/v1/au"


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_world(postgres_server_url, tmp_path_factory.mktemp("dispatch-api")) as built:
        yield built


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as c:
        yield c


def _service(world: World) -> DispatchService:
    assert world.dispatch is not None
    return world.dispatch


def _key() -> str:
    return uuid.uuid4().hex


def _mosie(world: World, key: str | None = None) -> dict[str, str]:
    """Account A's employee, a MOSIE, with an idempotency key when given."""
    headers = world.headers(Role.MOSIE)
    return headers if key is None else {**headers, "Idempotency-Key": key}


def _actions(world: World, job: int, action: str) -> int:
    history = _service(world).history(job, Scope.everything())
    return sum(1 for h in history if h.action == action)


def test_a_retried_action_with_the_same_key_applies_once_and_answers_the_same(
    world: World, client: TestClient
) -> None:
    job = seed_job(_service(world), world.tenants["A"], "assigned")
    key = _key()
    url = f"{AU}/workorders/{job}/actions"

    first = client.post(url, json={"action": "accept"}, headers=_mosie(world, key))
    again = client.post(url, json={"action": "accept"}, headers=_mosie(world, key))

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json() == again.json()
    assert (first.json()["status"], first.json()["version"]) == ("accepted", 3)
    assert _actions(world, job, "accept") == 1
    # The same key with another request is refused, and changes nothing.
    other = client.post(url, json={"action": "start_travel"}, headers=_mosie(world, key))
    assert other.status_code == 422
    assert other.json()["detail"]["field"] == "idempotency_key"
    assert _actions(world, job, "start_travel") == 0


@pytest.mark.parametrize("key", [None, "short", "k" * 101, "has space in it", "key.with/slash"])
def test_an_action_without_a_valid_key_is_refused_and_changes_nothing(
    world: World, client: TestClient, key: str | None
) -> None:
    job = seed_job(_service(world), world.tenants["A"], "assigned")
    headers = world.headers(Role.MOSIE)
    if key is not None:
        headers["Idempotency-Key"] = key
    answer = client.post(
        f"{AU}/workorders/{job}/actions", json={"action": "accept"}, headers=headers
    )
    assert answer.status_code == 422
    assert _actions(world, job, "accept") == 0


def test_lifecycle_refusals_carry_their_code(world: World, client: TestClient) -> None:
    job = seed_job(_service(world), world.tenants["A"])  # on site, nothing ticked
    url = f"{AU}/workorders/{job}/actions"

    early = client.post(url, json={"action": "resolve"}, headers=_mosie(world, _key()))
    no_reason = client.post(url, json={"action": "hold"}, headers=_mosie(world, _key()))
    stale = client.post(
        url,
        json={"action": "hold", "reason": "parts", "expected_version": 1},
        headers=_mosie(world, _key()),
    )

    assert (early.status_code, early.json()["detail"]["code"]) == (409, "safety_incomplete")
    assert (no_reason.status_code, no_reason.json()["detail"]["code"]) == (422, "reason_required")
    assert stale.status_code == 409
    assert _service(world).get(job, Scope.everything()).status == "on_site"


def _photos(world: World, job: int) -> int:
    return len(_service(world).photos(job, Scope.everything()))


def _chunks(content: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


@pytest.mark.parametrize(
    ("content_type", "content", "status"),
    [
        ("image/png", PNG + b"\x00" * 5000, 413),  # Content-Length above the limit
        ("image/png", _chunks(PNG + b"\x00" * 5000), 413),  # chunked: counted as it streams
        ("text/plain", b"hello", 415),
        ("image/svg+xml", b"<svg/>", 415),
        ("image/png", JPEG, 422),  # the bytes are not what the header says
        ("image/png", b"", 422),
    ],
    ids=["too-large", "too-large-chunked", "text", "svg", "jpeg-as-png", "empty"],
)
def test_a_photo_is_refused_for_size_and_type_before_anything_is_stored(
    world: World, client: TestClient, content_type: str, content: Any, status: int
) -> None:
    job = world.tenants["A"].work_order
    before = _photos(world, job)
    headers = {**_mosie(world, _key()), "Content-Type": content_type}
    answer = client.post(f"{AU}/workorders/{job}/photos", content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert _photos(world, job) == before


def test_a_photo_is_stored_once_and_served_as_its_own_type(
    world: World, client: TestClient
) -> None:
    job = world.tenants["A"].work_order
    headers = {**_mosie(world, _key()), "Content-Type": "image/png"}
    url = f"{AU}/workorders/{job}/photos"
    first = client.post(url, content=PNG, headers=headers)
    again = client.post(url, content=PNG, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()

    served = client.get(f"{url}/{first.json()['id']}", headers=world.headers(Role.OPERATOR))
    assert served.status_code == 200
    assert served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"


def test_a_mosie_reaches_only_their_own_jobs(world: World, client: TestClient) -> None:
    a, b = world.tenants["A"], world.tenants["B"]
    theirs = f"{AU}/workorders/{b.work_order}"

    assert client.get(theirs, headers=_mosie(world)).status_code == 404
    photo = client.get(f"{theirs}/photos/{b.photo}", headers=_mosie(world))
    assert photo.status_code == 404
    note = client.post(f"{theirs}/notes", json={"text": "x"}, headers=_mosie(world, _key()))
    assert note.status_code == 404

    board = client.get(f"{AU}/workorders", headers=_mosie(world))
    jobs = client.get(f"{AU}/me/jobs", headers=_mosie(world))
    assert board.status_code == jobs.status_code == 200
    assert {w["assignee"] for w in board.json()} == {a.employee}
    assert {w["assignee"] for w in jobs.json()} == {a.employee}
    assert a.work_order in {w["id"] for w in jobs.json()}
    asked = client.get(f"{AU}/workorders", params={"assignee": b.employee}, headers=_mosie(world))
    assert asked.json() == []


def test_a_customer_sees_the_timeline_but_not_the_office_record(
    world: World, client: TestClient
) -> None:
    a = world.tenants["A"]
    customer = client.get(f"{AU}/workorders/{a.work_order}", headers=world.headers(Role.CUSTOMER))
    staff = client.get(f"{AU}/workorders/{a.work_order}", headers=world.headers(Role.SUPPORT))

    assert customer.status_code == staff.status_code == 200
    seen = customer.json()
    assert [s["to_state"] for s in seen["timeline"]] == [
        "scheduled", "assigned", "accepted", "en_route", "on_site",
    ]  # fmt: skip
    assert (seen["history"], seen["ticks"], seen["photos"], seen["notes"]) == (None,) * 4
    assert [h["actor"] for h in staff.json()["history"]][:2] == ["seed", "seed"]
    assert staff.json()["photos"][0]["id"] == a.photo


def test_a_rejection_in_sap_is_shown_to_staff_with_sap_s_reason(
    world: World, client: TestClient
) -> None:
    a = world.tenants["A"]
    url = f"{AU}/workorders/{a.work_order}"
    assert client.get(url, headers=world.headers(Role.SUPPORT)).json()["sap"] is None
    rejected = ServiceOrderChanged(
        work_order_id=a.work_order, region="au", reference=f"POTR-AU-WO-{a.work_order}",
        service_order="4000000123", status="rejected", reason="Z1",
        changed_at=datetime(2026, 12, 6, 1, 0, tzinfo=UTC),
    )  # fmt: skip
    assert _service(world).record_sap_status(uuid.uuid4(), rejected)
    older = rejected.model_copy(
        update={"status": "open", "changed_at": datetime(2026, 12, 5, tzinfo=UTC)}
    )
    assert not _service(world).record_sap_status(uuid.uuid4(), older)  # SAP's newer word stays
    staff = client.get(url, headers=world.headers(Role.SUPPORT)).json()
    assert staff["sap"] == {
        "service_order": "4000000123", "status": "rejected", "reason": "Z1",
        "changed_at": "2026-12-06T01:00:00Z",
    }  # fmt: skip
    assert staff["work_order"]["status"] == "on_site"  # shown, not acted on
    assert client.get(url, headers=world.headers(Role.CUSTOMER)).json()["sap"] is None


def test_a_region_url_reaches_only_that_region(world: World, client: TestClient) -> None:
    e = world.tenants["E"]
    assert e.region == Region.ES
    answer = client.get(f"{AU}/workorders/{e.work_order}", headers=world.headers(Role.ADMIN))
    assert answer.status_code == 404


def test_the_customer_confirms_an_offered_window_once_and_is_refused_otherwise(
    world: World, client: TestClient
) -> None:
    """A retried confirmation applies once; a start not offered is 422 ``not_offered``,
    an expired offer 409 ``offer_expired``; another account's customer reads 404."""
    service, tenant = _service(world), world.tenants["A"]
    customer = world.headers(Role.CUSTOMER)
    job = seed_job(service, tenant, "scheduled")
    starts = (utc_now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    seed_offer(world.pool, job, starts)
    url = f"{AU}/workorders/{job}/appointment"

    offered = client.get(url, headers=customer)
    assert offered.status_code == 200
    [window] = offered.json()["windows"]
    assert datetime.fromisoformat(window["starts"]) == starts

    key = {**customer, "Idempotency-Key": _key()}
    body = {"start": starts.isoformat()}
    first, again = (
        client.post(url, json=body, headers=key),
        client.post(url, json=body, headers=key),
    )
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json() == again.json()
    booked = first.json()["appointment"]
    assert (booked["role"], datetime.fromisoformat(booked["starts"])) == ("customer", starts)
    assert _actions(world, job, "confirm_appointment") == 1
    assert service.get(job, Scope.everything()).status == "scheduled"  # no transition

    later = {"start": (starts + timedelta(hours=1)).isoformat()}
    wrong = client.post(url, json=later, headers={**customer, "Idempotency-Key": _key()})
    assert (wrong.status_code, wrong.json()["detail"]["code"]) == (422, "not_offered")

    stale = seed_job(service, tenant, "scheduled")
    seed_offer(world.pool, stale, starts, offered_at=utc_now() - timedelta(days=2))
    expired = client.post(
        f"{AU}/workorders/{stale}/appointment",
        json=body,
        headers={**customer, "Idempotency-Key": _key()},
    )
    assert (expired.status_code, expired.json()["detail"]["code"]) == (409, "offer_expired")

    other = seed_job(service, world.tenants["B"], "scheduled")
    seed_offer(world.pool, other, starts)
    assert client.get(f"{AU}/workorders/{other}/appointment", headers=customer).status_code == 404
