"""The region's parts stock as inventory (issue 19), over ``api_world`` on real
PostgreSQL: each part's unit cost and reorder settings through the admin route (bad input
422, never a 500); the stock valued at quantity x unit cost per part and in total, to the
cent, on the service and on the parts page; a use that takes a part to or below its
reorder level emits one ``part.reorder_needed`` per crossing (again only after a restock
lifts it above), and dispatch's outbox, relayed through the in-process bus to notify's
handlers as ``cloud_events`` wires them, puts it in the inbox of the region's admins and
operators and nobody else's.

Every expected figure is computed by hand here, not by the code under test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.dispatch import DispatchService
from cloud.events.bus import InProcessBus
from cloud.events.outbox import Event
from cloud.events.relay import OutboxRelay
from cloud.events.users import USER_CREATED, UserChanged, UserContact, contact_event, user_event
from cloud.identity import Role
from cloud.notify import InboxService, NotificationService, NotifyHandlers, NotifySettings
from cloud.notify import event_subscriptions as notify_subscriptions
from contracts.timeutil import utc_now
from contracts.topics import Region
from tests.api_tokens import bearer, mint_token
from tests.integration.api_world import World, api_world, private_database, seed_job

pytestmark = pytest.mark.integration

ADMIN_AU = "usr_" + "a" * 32
OPERATOR_AU = "usr_" + "b" * 32
MOSIE_AU = "usr_" + "c" * 32
ADMIN_ES = "usr_" + "d" * 32


@dataclass(frozen=True)
class Built:
    database_url: str
    world: World


@pytest.fixture(scope="module")
def built(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    keys = tmp_path_factory.mktemp("parts-stock")
    with private_database(postgres_server_url) as url, api_world(url, keys) as world:
        yield Built(url, world)


def _service(world: World) -> DispatchService:
    assert world.dispatch is not None
    return world.dispatch


def _reorders(world: World, part_no: str) -> list[dict[str, Any]]:
    """The ``part.reorder_needed`` events of ``part_no`` in dispatch's outbox."""
    with world.pool.connection() as conn:
        rows = conn.execute(
            "SELECT payload FROM dispatch.outbox WHERE name = 'part.reorder_needed'"
            " AND payload->>'part_no' = %s ORDER BY id",
            (part_no,),
        ).fetchall()
    return [r[0] for r in rows]


def _use(world: World, job: int, part_no: str, quantity: int, key: str | None = None) -> int:
    """``quantity`` of ``part_no`` used on ``job`` by its MOSIE; what is left."""
    a = world.tenants["A"]
    use = _service(world).use_part(job, part_no, quantity, a.employee, key or uuid.uuid4().hex)
    return use.stock_left


def _page_client(world: World, role: Role, region: Region) -> TestClient:
    client = TestClient(world.app, base_url="https://testserver", raise_server_exceptions=False)
    client.cookies.set("potr_session", mint_token(role, region=region))
    return client


# -- the admin route ----------------------------------------------------------------------
def test_an_admin_sets_a_parts_unit_cost_and_reorder_settings_and_bad_input_is_refused(
    built: Built,
) -> None:
    world = built.world
    url = "/api/v1/es/parts"
    admin = bearer(Role.ADMIN, region=Region.ES)
    body = {
        "part_no": "ES-PANEL-400",
        "quantity": 7,
        "description": "Panel 400 W",
        "unit_value": "189.95",
        "reorder_level": 2,
        "reorder_quantity": 10,
    }
    with TestClient(world.app, raise_server_exceptions=False) as client:
        made = client.post(url, json=body, headers=admin)
        assert made.status_code == 200, made.text
        line = made.json()
        assert (line["quantity"], line["unit_value"], line["currency"]) == (7, "189.95", "EUR")
        assert (line["reorder_level"], line["reorder_quantity"]) == (2, 10)
        # Quantity 0: only the settings change; what is not given stays as it was.
        changed = client.post(
            url, json={"part_no": "ES-PANEL-400", "quantity": 0, "reorder_level": 3}, headers=admin
        )
        assert changed.status_code == 200, changed.text
        line = changed.json()
        assert (line["quantity"], line["unit_value"], line["description"]) == (
            7,
            "189.95",
            "Panel 400 W",
        )
        assert (line["reorder_level"], line["reorder_quantity"]) == (3, 10)
        for wrong in (
            {**body, "unit_value": "1.234"},  # a fraction of a cent
            {**body, "unit_value": "-0.01"},
            {**body, "unit_value": "1000000000.01"},
            {**body, "unit_value": "twelve"},
            {**body, "reorder_level": -1},
            {**body, "reorder_quantity": 1_000_001},
            {**body, "reorder_quantity": "ten"},
            {**body, "reorder_level": 1.5},
            {**body, "reorder_quantity": False},
            {**body, "quantity": "3"},
            {**body, "quantity": -1},
            {**body, "currency": "USD"},  # the region's currency, never the caller's
        ):
            answer = client.post(url, json=wrong, headers=admin)
            assert answer.status_code == 422, (wrong, answer.text)
        operator = client.post(url, json=body, headers=bearer(Role.OPERATOR, region=Region.ES))
        assert operator.status_code == 403
    parts = {p.part_no: p for p in _service(world).stock(Region.ES)}
    assert parts["ES-PANEL-400"].quantity == 7  # nothing refused was applied


# -- valuation ---------------------------------------------------------------------------
#: The US stock (no other test stocks parts there): part, quantity, unit cost.
US_STOCK = (
    ("US-PANEL", 7, Decimal("189.95"), 2),
    ("US-FUSE", 123, Decimal("0.35"), 150),  # at or below its level: to reorder
    ("US-TILE", 3, Decimal("12.50"), 0),
)
#: By hand: 7 x 189.95 = 1329.65; 123 x 0.35 = 43.05; 3 x 12.50 = 37.50.
US_VALUES = {"US-PANEL": "1329.65", "US-FUSE": "43.05", "US-TILE": "37.50"}
#: 1329.65 + 43.05 + 37.50 (US-BOLT has no unit cost: left out, and said so).
US_TOTAL = "1410.20"


def _stock_us(world: World) -> None:
    service = _service(world)
    for part_no, quantity, cost, level in US_STOCK:
        service.add_stock(
            Region.US, part_no, quantity, unit_value=cost, reorder_level=level, reorder_quantity=200
        )
    service.add_stock(Region.US, "US-BOLT", 40, "M8 bolt")


def test_the_stock_is_valued_at_quantity_times_unit_cost_per_part_and_in_total(
    built: Built,
) -> None:
    world = built.world
    _stock_us(world)
    value = _service(world).stock_value(Region.US)
    assert value.currency == "USD"
    assert {v.line.part_no: str(v.value) for v in value.lines if v.value is not None} == US_VALUES
    assert str(value.total) == US_TOTAL
    assert value.unvalued == 1
    assert [v.line.part_no for v in value.low] == ["US-FUSE"]

    with TestClient(world.app, raise_server_exceptions=False) as api:
        answer = api.get("/api/v1/us/parts/value", headers=bearer(Role.OPERATOR, region=Region.US))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["currency"], body["total"], body["unvalued"]) == ("USD", US_TOTAL, 1)
    assert {p["part_no"]: p["value"] for p in body["parts"] if p["value"]} == US_VALUES
    assert [p["part_no"] for p in body["parts"] if p["low"]] == ["US-FUSE"]

    with _page_client(world, Role.ADMIN, Region.US) as client:
        page = client.get("/ui/us/parts")
    assert page.status_code == 200, page.text
    html = page.text
    assert f'id="stock-total" data-value="{US_TOTAL}"' in html
    assert "$1,410.20" in html
    for part_no, expected in US_VALUES.items():
        row = re.search(rf'<tr data-part="{part_no}".*?</tr>', html, re.S)
        assert row is not None, part_no
        assert f'data-metric="value" data-value="{expected}"' in row.group(0)
    for shown in ("$1,329.65", "$189.95", "$0.35"):
        assert shown in html
    low = re.findall(r'<tr data-part="([^"]+)" class="low" data-low="yes">', html)
    assert low == ["US-FUSE"]
    assert 'id="stock-unvalued"' in html


def test_the_parts_page_is_the_offices_and_in_spanish_for_a_spanish_reader(built: Built) -> None:
    world = built.world
    _service(world).add_stock(Region.ES, "ES-FUSE", 4, unit_value=Decimal("2.25"))
    with _page_client(world, Role.OPERATOR, Region.ES) as client:
        client.cookies.set("potr_lang", "es")
        page = client.get("/ui/es/parts", headers={"Accept-Language": "es"})
    assert page.status_code == 200, page.text
    assert "Existencias de piezas" in page.text
    # 4 x 2,25 € = 9,00 € (Spanish: decimal comma, the euro after the amount).
    row = re.search(r'<tr data-part="ES-FUSE".*?</tr>', page.text, re.S)
    assert row is not None
    assert "9,00\xa0€" in row.group(0)
    with _page_client(world, Role.SUPPORT, Region.ES) as client:
        assert client.get("/ui/es/parts").status_code == 403


def test_an_admin_changes_a_parts_settings_from_the_page_and_bad_input_is_a_page(
    built: Built,
) -> None:
    world = built.world
    service = _service(world)
    service.add_stock(Region.ES, "ES-CABLE", 10, unit_value=Decimal("1.00"))
    with _page_client(world, Role.ADMIN, Region.ES) as client:
        page = client.get("/ui/es/parts")
        assert 'id="part-settings"' in page.text
        token = client.cookies.get("potr_csrf")
        form = {"csrf_token": token, "part_no": "ES-CABLE", "unit_value": "2.40"}
        saved = client.post(
            "/ui/es/parts", data={**form, "reorder_level": "4"}, follow_redirects=False
        )
        assert saved.status_code == 303, saved.text
        for field, typed in (
            ("unit_value", "2.405"),
            ("unit_value", "-1"),
            ("unit_value", "1e3"),
            ("reorder_level", "-1"),
            ("reorder_level", "two"),
            ("reorder_quantity", "1000001"),  # a number, but out of bounds
        ):
            bad = client.post("/ui/es/parts", data={**form, field: typed})
            assert bad.status_code == 422, (field, typed, bad.text)
            assert 'id="refusal"' in bad.text
        unknown = client.post("/ui/es/parts", data={**form, "part_no": "ES-NONE"})
        assert unknown.status_code == 404
        forged = client.post("/ui/es/parts", data={"part_no": "ES-CABLE", "unit_value": "0"})
        assert forged.status_code == 403
    with _page_client(world, Role.OPERATOR, Region.ES) as client:
        assert 'id="part-settings"' not in client.get("/ui/es/parts").text
        token = client.cookies.get("potr_csrf")
        form = {"csrf_token": token, "part_no": "ES-CABLE", "unit_value": "0.01"}
        assert client.post("/ui/es/parts", data=form).status_code == 403
    line = {p.part_no: p for p in service.stock(Region.ES)}["ES-CABLE"]
    # Only the admin's valid post applied: 2.40 and level 4, nothing else, no stock added.
    assert (line.quantity, line.unit_value, line.reorder_level) == (10, Decimal("2.40"), 4)
    assert line.reorder_quantity == 0


# -- consumption -------------------------------------------------------------------------
def test_a_use_keeps_the_unit_cost_in_force_when_it_was_made(built: Built) -> None:
    world = built.world
    service = _service(world)
    service.add_stock(Region.AU, "AU-TILE", 10, unit_value=Decimal("12.50"))
    job = seed_job(service, world.tenants["A"])
    a = world.tenants["A"]
    first = service.use_part(job, "AU-TILE", 3, a.employee, uuid.uuid4().hex)
    service.add_stock(Region.AU, "AU-TILE", 0, unit_value=Decimal("14.00"))
    second = service.use_part(job, "AU-TILE", 1, a.employee, uuid.uuid4().hex)
    assert (first.unit_value, second.unit_value) == (Decimal("12.50"), Decimal("14.00"))
    with world.pool.connection() as conn:
        rows = conn.execute(
            "SELECT quantity, unit_value FROM dispatch.parts_used WHERE part_no = 'AU-TILE'"
            " ORDER BY id"
        ).fetchall()
    assert rows == [(3, Decimal("12.50")), (1, Decimal("14.00"))]  # history not rewritten
    # 6 left x 14.00 = 84.00.
    left = {v.line.part_no: v.value for v in service.stock_value(Region.AU).lines}
    assert left["AU-TILE"] == Decimal("84.00")


# -- reorder notices ---------------------------------------------------------------------
def test_a_use_crossing_the_reorder_level_emits_one_notice_and_again_after_a_restock(
    built: Built,
) -> None:
    world = built.world
    service = _service(world)
    service.add_stock(
        Region.AU, "AU-RELAY", 5, "Relay 40 A", unit_value=Decimal("30.00"),
        reorder_level=2, reorder_quantity=10,
    )  # fmt: skip
    job = seed_job(service, world.tenants["A"])
    assert _use(world, job, "AU-RELAY", 2) == 3  # above the level: nothing
    assert _reorders(world, "AU-RELAY") == []
    key = uuid.uuid4().hex
    assert _use(world, job, "AU-RELAY", 1, key) == 2  # 3 → 2: crosses it
    assert _use(world, job, "AU-RELAY", 1, key) == 2  # the same request retried: nothing
    assert _use(world, job, "AU-RELAY", 1) == 1  # below already: nothing more
    notices = _reorders(world, "AU-RELAY")
    assert len(notices) == 1
    notice = notices[0]
    assert (notice["region"], notice["quantity"]) == ("au", 2)
    assert (notice["reorder_level"], notice["reorder_quantity"]) == (2, 10)
    assert (notice["unit_value"], notice["currency"]) == ("30.00", "AUD")
    assert notice["work_order_id"] == job
    service.add_stock(Region.AU, "AU-RELAY", 1)  # 2: still at the level, not above it
    assert _use(world, job, "AU-RELAY", 1) == 1
    assert len(_reorders(world, "AU-RELAY")) == 1
    service.add_stock(Region.AU, "AU-RELAY", 5)  # 6: above it again
    assert _use(world, job, "AU-RELAY", 6) == 0  # 6 → 0: a new crossing
    again = _reorders(world, "AU-RELAY")
    assert [n["quantity"] for n in again] == [2, 0]


def test_a_part_not_reordered_tells_nobody(built: Built) -> None:
    world = built.world
    service = _service(world)
    service.add_stock(Region.AU, "AU-CLIP", 3, reorder_level=2)  # reorder quantity 0
    job = seed_job(service, world.tenants["A"])
    assert _use(world, job, "AU-CLIP", 3) == 0
    assert _reorders(world, "AU-CLIP") == []


# -- the notice in people's inbox ---------------------------------------------------------
def _person(user_id: str, role: str, region: Region) -> Event:
    changed = UserChanged(user_id=user_id, role=role, home_region=region)
    return user_event(USER_CREATED, changed, occurred_at=utc_now())


async def test_the_notice_reaches_the_regions_admins_and_operators_inbox(built: Built) -> None:
    world = built.world
    service = _service(world)
    service.add_stock(
        Region.AU, "AU-NOTE", 4, "Surge arrester", reorder_level=1, reorder_quantity=8
    )
    job = seed_job(service, world.tenants["A"])
    assert _use(world, job, "AU-NOTE", 3) == 1  # 4 → 1: crosses the level
    settings = NotifySettings(env="test", database_url=built.database_url)
    handlers = NotifyHandlers(world.pool, NotificationService(world.pool, settings))
    async with InProcessBus() as bus:
        for sub in notify_subscriptions(handlers):
            await bus.subscribe(sub)
        await bus.publish(
            [
                _person(ADMIN_AU, "admin", Region.AU),
                _person(OPERATOR_AU, "operator", Region.AU),
                _person(MOSIE_AU, "mosie", Region.AU),
                _person(ADMIN_ES, "admin", Region.ES),
                contact_event(
                    UserContact(user_id=ADMIN_AU, home_region=Region.AU, email="ops@potr.example")
                ),
            ]
        )
        relay = OutboxRelay(world.pool, "dispatch", bus)
        while await relay.relay_once():  # the in-process bus returns once handled
            pass
        assert bus.dead_letters == []
    inbox = InboxService(world.pool)

    def told(user_id: str) -> list[str]:
        return [e.title for e in inbox.list(user_id, limit=200).entries if "AU-NOTE" in e.title]

    assert told(ADMIN_AU) == told(OPERATOR_AU) == ["Reorder AU-NOTE: 1 left"]
    assert told(MOSIE_AU) == told(ADMIN_ES) == []
    entry = next(e for e in inbox.list(ADMIN_AU, limit=200).entries if "AU-NOTE" in e.title)
    assert "Reorder 8." in entry.body
    assert entry.link == "/ui/au/parts"
    # The admin with a work address is mailed too (notices are mailed by default).
    with world.pool.connection() as conn:
        mailed = conn.execute(
            "SELECT user_id, destination FROM notify.deliveries WHERE channel = 'email'"
            " AND payload LIKE %s",
            ("%Reorder AU-NOTE%",),
        ).fetchall()
    assert mailed == [(ADMIN_AU, "ops@potr.example")]
