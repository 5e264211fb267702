"""A customer's self-service (issue 20): the account at a glance, and who is at the door.

The overview answers what the IVR's callers asked — the balance and the documents still
open, the billed energy and its savings against the utility's reference price (computed
here by hand from the invoices the test writes and the reports' reference prices,
``cloud/reports/data/reference.yaml``, read here), the system's health, the next visit —
for the customer's own account only.

Who is at the door: while a job is en route or on site, its customer's
visits page and job page show the MOSIE's name, badge photo and the door code, and the
MOSIE's job page shows the same code; nobody else gets any of it, and the code changes
with the time step, the visit and the assignee.

The expected codes are computed here by hand from the job's stored secret (HMAC-SHA256,
RFC 4226's dynamic truncation, over the step counter, the visit and the assignee), not by
:mod:`cloud.dispatch.door_code`. Over ``private_world``: accounts A and B in au, E in es.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from cloud.dispatch import DispatchService
from cloud.dispatch.errors import NotFoundError
from cloud.dispatch.photos import FilesystemPhotoStorage
from cloud.employees import EmployeeService
from cloud.identity import Role
from cloud.scope import Scope
from contracts.topics import Region
from tests.api_tokens import mint_token
from tests.integration.api_world import PNG, World, page_client, private_world, seed_job

REFERENCE = Path(__file__).parents[2] / "cloud" / "reports" / "data" / "reference.yaml"

pytestmark = pytest.mark.integration

_CODE = re.compile(r"data-door-code>([0-9]{6})<")
#: A small JPEG's start: the magic bytes are what the upload check reads.
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x01" * 200
T0 = datetime(2026, 12, 6, 9, 0, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_world(postgres_server_url, tmp_path_factory.mktemp("door")) as built:
        staff = EmployeeService(built.pool)
        for t in built.tenants.values():
            staff.set_badge_photo(t.employee, PNG, "image/png", "test")
        yield built


# -- the account at a glance ----------------------------------------------------------
def _invoice(
    world: World, account: str, site: int, number: str, first_day: str, lines: list[tuple]
) -> int:
    """An issued NSW invoice of ``lines`` (kWh, unit price) for the month from
    ``first_day``, 10 % GST, written as billing stores one; its id."""
    net = sum((_cents(k * p) for k, p in lines), Decimal(0))
    tax = _cents(net / 10)
    with world.pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO billing.invoices (number, kind, region, account_id, site_id,"
            " first_day, last_day, plan_code, tariff_zone, time_zone, contract_start,"
            " currency, net, tax, gross, issued_at, issue_date, due_date) VALUES"
            " (%s, 'invoice', 'au', %s, %s, %s::date, (%s::date + interval '1 month'"
            " - interval '1 day')::date, 'flat', 'NSW', 'Australia/Sydney', '2024-01-01',"
            " 'AUD', %s, %s, %s, %s::date + interval '1 month', (%s::date + interval"
            " '1 month')::date, (%s::date + interval '45 days')::date) RETURNING id",
            (number, account, site, first_day, first_day, net, tax, net + tax,
             first_day, first_day, first_day),
        ).fetchone()  # fmt: skip
        assert row is not None
        for n, (kwh, price) in enumerate(lines, start=1):
            conn.execute(
                "INSERT INTO billing.invoice_lines (invoice_id, line_no, description_key,"
                " first_day, last_day, period, kwh, unit_price, net, tax, tax_percent)"
                " VALUES (%s, %s, 'energy', %s::date, %s::date + interval '1 month'"
                " - interval '1 day', 'flat', %s, %s, %s, 'GST', 10)",
                (row[0], n, first_day, first_day, kwh, price, _cents(kwh * price)),
            )
    return int(row[0])


def _cancel(world: World, invoice_id: int, number: str) -> Decimal:
    """Cancel the invoice as billing does: its state, and a cancellation of its amounts."""
    with world.pool.connection() as conn:
        conn.execute("UPDATE billing.invoices SET state = 'cancelled' WHERE id = %s", (invoice_id,))
        row = conn.execute(
            "INSERT INTO billing.invoices (number, kind, region, account_id, site_id,"
            " first_day, last_day, plan_code, tariff_zone, time_zone, contract_start,"
            " currency, net, tax, gross, issued_at, issue_date, due_date, reference_id)"
            " SELECT %s, 'cancellation', region, account_id, site_id, first_day, last_day,"
            " plan_code, tariff_zone, time_zone, contract_start, currency, net, tax, gross,"
            " issued_at, issue_date, due_date, id FROM billing.invoices WHERE id = %s"
            " RETURNING gross",
            (number, invoice_id),
        ).fetchone()
    assert row is not None
    return Decimal(row[0])


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _au_price(zone: str, day: date) -> Decimal:
    """The utility's price in ``zone`` of au on ``day``, read from the data file itself
    (the zone's versions, else the ``*`` ones; the latest in force)."""
    data = yaml.safe_load(REFERENCE.read_text("utf-8"))["utility_prices"]["au"]["zones"]
    versions = data.get(zone) or data["*"]
    return Decimal(max((v for v in versions if v["effective_from"] <= day),
                       key=lambda v: v["effective_from"])["price"])  # fmt: skip


def test_the_overview_answers_what_callers_asked_for_their_own_account(world: World) -> None:
    a, b = world.tenants["A"], world.tenants["B"]
    # Two months of NSW invoices, and a cancelled one.
    june = [(Decimal("100"), Decimal("0.16"))]
    july = [(Decimal("250.5"), Decimal("0.16")), (Decimal("12.25"), Decimal("0.18"))]
    _invoice(world, a.account, a.site, "AU-2025-0000901", "2025-06-01", june)
    _invoice(world, a.account, a.site, "AU-2025-0000902", "2025-07-01", july)
    gone = _invoice(world, a.account, a.site, "AU-2025-0000903", "2025-08-01", june)
    _cancel(world, gone, "AU-2025-0000904")
    # By hand, with the seeded October 2026 bill (zone "seed": 100 kWh at 0.25):
    #   100 x (p - 0.25) + 100 x (p - 0.16) + 250.5 x (p - 0.16) + 12.25 x (p - 0.18)
    days = [("seed", date(2026, 10, 1)), ("NSW", date(2025, 6, 1))] + [
        ("NSW", date(2025, 7, 1))
    ] * 2
    prices = [_au_price(zone, day) for zone, day in days]
    saved = _cents(
        100 * (prices[0] - Decimal("0.25"))
        + 100 * (prices[1] - Decimal("0.16"))
        + Decimal("250.5") * (prices[2] - Decimal("0.16"))
        + Decimal("12.25") * (prices[3] - Decimal("0.18"))
    )
    assert prices == [Decimal("0.3000")] * 4  # the shipped figure: 5.00 + 14.00 + 35.07 + 1.47
    assert saved == Decimal("55.54")
    # The balance: the seeded bill's 17.50 still owed, June's 16.00 + 1.60 GST and
    # July's 40.08 + 2.21 = 42.29 + 4.23 GST (the cancelled one and its cancellation
    # cancel out).
    balance = Decimal("17.50") + Decimal("17.60") + Decimal("46.52")
    with page_client(world, Role.CUSTOMER) as customer:
        page = customer.get("/ui/au/overview")
        spanish = customer.get("/ui/au/overview", headers={"Accept-Language": "es"})
        home = customer.get("/ui/au/")
    assert page.status_code == 200
    assert f'data-balance="AUD" data-value="{balance}"' in page.text
    for number in ("AU-2025-0000901", "AU-2025-0000902", a.bill):
        assert f'data-open-document="{number}"' in page.text
    assert 'data-open-document="AU-2025-0000903"' not in page.text  # cancelled
    assert f'data-savings="AUD" data-kwh="462.750000" data-value="{saved}"' in page.text
    assert f'data-site-health="{a.site}" data-alarms="1"' in page.text
    visit = re.search(r'data-next-visit="([0-9]+)"', page.text)
    assert visit is not None
    with world.pool.connection() as conn:
        job = conn.execute(
            "SELECT account_id, status FROM dispatch.work_orders WHERE id = %s",
            (int(visit.group(1)),),
        ).fetchone()
    assert job == (a.account, "on_site")
    assert "Mi cuenta de un vistazo" in spanish.text
    assert "unos" in spanish.text
    assert 'hx-get="/ui/au/overview"' in home.text
    # Another customer sees none of it.
    token = mint_token(Role.CUSTOMER, region=Region.AU, account_id=b.account)
    with TestClient(world.app, base_url="https://testserver") as other:
        other.cookies.set("potr_session", token)
        theirs = other.get("/ui/au/overview")
    assert theirs.status_code == 200
    assert "AU-2025-0000901" not in theirs.text
    # B's own: its seeded bill only, 100 x (0.30 - 0.25).
    assert 'data-savings="AUD" data-kwh="100.000000" data-value="5.00"' in theirs.text
    assert f'data-site-health="{a.site}"' not in theirs.text


# -- who is at the door ------------------------------------------------------------------
def _secret(world: World, job: int) -> bytes:
    with world.pool.connection() as conn:
        row = conn.execute(
            "SELECT door_secret FROM dispatch.work_orders WHERE id = %s", (job,)
        ).fetchone()
    assert row is not None
    return bytes(row[0])


def _expected(secret: bytes, visit: int, assignee: str, at: datetime) -> str:
    """The door code by hand: 120 s steps since the epoch, HMAC-SHA256 over the step
    (8 bytes) and the visit (4 bytes) big-endian then the employee number, truncated as
    RFC 4226 §5.3 does, six digits."""
    step = int(at.timestamp()) // 120
    message = step.to_bytes(8, "big") + visit.to_bytes(4, "big") + assignee.encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def _at(world: World, at: datetime, tmp: Path) -> DispatchService:
    """The dispatch service over the world's database, its clock stopped at ``at``."""
    return DispatchService(world.pool, clock=lambda: at, photos=FilesystemPhotoStorage(tmp))


def _act(service: DispatchService, job: int, action: str, actor: str, role: str, **kw: str) -> None:
    service.act(job, action, actor, role, idempotency_key=uuid.uuid4().hex, **kw)


def _codes(text: str, job: int) -> list[str]:
    """The codes of ``job``'s door panels on a page (a visits page lists every job)."""
    return re.findall(rf'data-door="{job}".*?data-door-code>([0-9]{{6}})<', text, re.DOTALL)


def test_the_customer_sees_the_mosies_name_photo_and_the_code_their_page_shows(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    assert world.dispatch is not None
    a = world.tenants["A"]
    job = seed_job(world.dispatch, a)  # on site with A's employee
    secret = _secret(world, job)
    caplog.set_level(logging.DEBUG)
    before = datetime.now(UTC)
    with page_client(world, Role.CUSTOMER) as customer, page_client(world, Role.MOSIE) as mosie:
        visits = customer.get("/ui/au/visits")
        job_page = customer.get(f"/ui/au/workorders/{job}")
        panel = customer.get(f"/ui/au/workorders/{job}/door")
        photo = customer.get(f"/ui/au/workorders/{job}/door/photo")
        theirs = mosie.get(f"/ui/au/workorders/{job}")
        # The MOSIE's phone app asks the API for the same code.
        bearer = mint_token(Role.MOSIE, region=Region.AU, employee_no=a.employee)
        app_code = mosie.get(
            f"/api/v1/au/workorders/{job}/door-code",
            headers={"Authorization": f"Bearer {bearer}"},
        )
    after = datetime.now(UTC)
    assert {r.status_code for r in (visits, job_page, panel, photo, theirs)} == {200}
    # Between the first page and the last, at most one step boundary passed.
    allowed = {_expected(secret, 1, a.employee, at) for at in (before, after)}
    shown = [_codes(page.text, job) for page in (visits, job_page, panel, theirs)]
    assert all(len(codes) == 1 for codes in shown), shown
    assert {codes[0] for codes in shown} <= allowed
    assert app_code.status_code == 200
    assert app_code.json()["code"] in allowed
    assert app_code.headers["cache-control"] == "no-store"
    name = EmployeeService(world.pool).get(a.employee).name
    assert f"data-door-name><strong>{name}</strong>" in panel.text
    assert f'src="/ui/au/workorders/{job}/door/photo"' in visits.text
    assert (photo.content, photo.headers["content-type"]) == (PNG, "image/png")
    assert panel.headers["cache-control"] == "no-store"
    # Never written to a log.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(code in logged for code in allowed)


def test_no_one_but_the_jobs_customer_and_mosie_gets_the_code(world: World) -> None:
    assert world.dispatch is not None
    a, b = world.tenants["A"], world.tenants["B"]
    job = seed_job(world.dispatch, a)
    au = Scope.of_region(Region.AU)
    service = world.dispatch
    assert service.door_code(job, Scope.of_account(Region.AU, a.account)).assignee == a.employee
    assert service.door_code(job, au, assignee=a.employee).assignee == a.employee
    for scope, assignee in (
        (au, None),  # the office's reach: no code
        (Scope.everything(), None),  # an admin's
        (Scope.of_account(Region.AU, b.account), None),  # another customer
        (au, b.employee),  # another MOSIE of the region
        (Scope.of_account(Region.AU, None), None),  # a customer without an account
    ):
        with pytest.raises(NotFoundError):
            service.door_code(job, scope, assignee=assignee)
    with page_client(world, Role.OPERATOR) as operator, page_client(world, Role.SUPPORT) as desk:
        assert "data-door-code" not in operator.get(f"/ui/au/workorders/{job}").text
        assert "data-door-code" not in desk.get(f"/ui/au/workorders/{job}").text
        assert operator.get(f"/ui/au/workorders/{job}/door").status_code == 403
    # B's customer and a MOSIE not on the job: as for no job.
    b_job = seed_job(world.dispatch, b)
    with page_client(world, Role.CUSTOMER) as customer, page_client(world, Role.MOSIE) as mosie:
        assert customer.get(f"/ui/au/workorders/{b_job}/door").status_code == 404
        assert customer.get(f"/ui/au/workorders/{b_job}/door/photo").status_code == 404
        assert mosie.get(f"/ui/au/workorders/{b_job}/door").status_code == 404


def test_the_code_changes_with_the_step_the_visit_and_the_assignee(
    world: World, tmp_path: Path
) -> None:
    assert world.dispatch is not None
    a, b = world.tenants["A"], world.tenants["B"]
    job = seed_job(world.dispatch, a)
    secret = _secret(world, job)
    mine = Scope.of_account(Region.AU, a.account)
    first = _at(world, T0, tmp_path).door_code(job, mine)
    assert first.code == _expected(secret, 1, a.employee, T0)
    assert first.valid_until == datetime(2026, 12, 6, 9, 2, tzinfo=UTC)
    # The same step: the same code; the next step: the next step's.
    later = T0 + timedelta(seconds=89)
    assert _at(world, later, tmp_path).door_code(job, mine).code == first.code
    step2 = T0 + timedelta(minutes=2)
    assert _at(world, step2, tmp_path).door_code(job, mine).code == _expected(
        secret, 1, a.employee, step2
    )
    # A second visit (on hold, booked again, arrived again): visit 2's code.
    service = world.dispatch
    _act(service, job, "hold", a.employee, "mosie", reason="part on order")
    with pytest.raises(NotFoundError):  # on hold: nobody is coming
        _at(world, T0, tmp_path).door_code(job, mine)
    _act(service, job, "assign", "ops", "operator", technician=a.employee)
    for action in ("accept", "start_travel"):
        _act(service, job, action, a.employee, "mosie")
    # En route already: the customer may check who is coming.
    assert _at(world, T0, tmp_path).door_code(job, mine).code == _expected(
        secret, 1, a.employee, T0
    )
    _act(service, job, "arrive", a.employee, "mosie")
    second = _at(world, T0, tmp_path).door_code(job, mine)
    assert (second.visit, second.code) == (2, _expected(secret, 2, a.employee, T0))
    # Handed to another MOSIE: the first one's code is dead, the new one's is theirs.
    _act(service, job, "hold", a.employee, "mosie", reason="handover")
    _act(service, job, "assign", "ops", "operator", technician=b.employee)
    for action in ("accept", "start_travel"):
        _act(service, job, action, b.employee, "mosie")
    au = Scope.of_region(Region.AU)
    with pytest.raises(NotFoundError):
        _at(world, T0, tmp_path).door_code(job, au, assignee=a.employee)
    theirs = _at(world, T0, tmp_path).door_code(job, au, assignee=b.employee)
    assert theirs.code == _expected(secret, 2, b.employee, T0)
    # Another job's code at the same instant comes from another secret.
    other = seed_job(world.dispatch, a)
    assert _secret(world, other) != secret


def test_there_is_no_code_before_the_mosie_sets_off(world: World) -> None:
    assert world.dispatch is not None
    a = world.tenants["A"]
    job = seed_job(world.dispatch, a, to="assigned")
    with page_client(world, Role.CUSTOMER) as customer:
        # Assigned, not yet on the way: no code; the panel's refresh answers an empty
        # panel and stops polling (htmx's 286).
        ended = customer.get(f"/ui/au/workorders/{job}/door")
        assert ended.status_code == 286
        assert "data-door-ended" in ended.text
        assert "data-door-code" not in customer.get(f"/ui/au/workorders/{job}").text


def _admin(region: Region = Region.AU) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(Role.ADMIN, region=region)}"}


def test_an_admin_uploads_a_badge_photo_and_bad_ones_are_refused(world: World) -> None:
    a, e = world.tenants["A"], world.tenants["E"]
    url = f"/api/v1/au/employees/{a.employee}/photo"
    with TestClient(world.app, base_url="https://testserver") as api:
        stored = api.put(url, content=JPEG, headers={**_admin(), "Content-Type": "image/jpeg"})
        assert stored.status_code == 204, stored.text
        assert EmployeeService(world.pool).badge_photo(a.employee).content == JPEG
        cases = [
            (PNG, "image/jpeg", 422),  # the bytes are not what the header says
            (b"GIF89a" + b"\x00" * 40, "image/png", 422),  # not an accepted image
            (JPEG, "image/gif", 415),
            (b"", "image/png", 422),
            (b"\xff\xd8\xff" + b"\x00" * (256 * 1024), "image/jpeg", 413),
        ]
        for content, declared, status in cases:
            refused = api.put(url, content=content, headers={**_admin(), "Content-Type": declared})
            assert refused.status_code == status, (declared, refused.text)
        # Another region's employee under the au URL: not found.
        elsewhere = f"/api/v1/au/employees/{e.employee}/photo"
        answer = api.put(elsewhere, content=PNG, headers={**_admin(), "Content-Type": "image/png"})
        assert answer.status_code == 404
    # The refusals left the photo stored.
    assert EmployeeService(world.pool).badge_photo(a.employee).content == JPEG
