"""The dispatch service on a real PostgreSQL: a job through its lifecycle with its
history and ``workorder.*`` events, idempotent retries, what only the assigned MOSIE may
record on site (checklist, photos, parts), and the reads' reach. Sites arrive as the
registry's gateway events through the real event runtime (in-process bus). Time is an
injected clock; photos go to a real directory."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.bootstrap import cloud_events
from cloud.dispatch import (
    ConflictError,
    DispatchService,
    FilesystemPhotoStorage,
    NotFoundError,
    RefusedError,
    TickRefused,
    TransitionRefused,
    WorkOrder,
)
from cloud.dispatch.checklists import TickRefusalCode, load_checklists
from cloud.dispatch.lifecycle import RefusalCode
from cloud.events.bus import InProcessBus
from cloud.events.types import GatewayRegistration, gateway_registration_event
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.dispatch_world import TickingClock, database_fixtures

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
SITE, OTHER_SITE = 5, 9
ACCOUNT = "acc_" + "c" * 32
MOSIE, OTHER_MOSIE, OPS = "E1001", "E1002", "usr_ops"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
TABLES = (
    "dispatch.work_orders, dispatch.history, dispatch.idempotency_keys,"
    " dispatch.checklist_ticks, dispatch.notes, dispatch.photos, dispatch.parts_stock,"
    " dispatch.parts_used, dispatch.signatures, dispatch.sites, dispatch.site_gateways,"
    " dispatch.outbox, dispatch.inbox"
)


migrated_url, pool = database_fixtures("dispatch", TABLES, max_size=4, name="test-dispatch-service")


@pytest.fixture
def photo_root(tmp_path: Path) -> Path:
    return tmp_path / "photos"


@pytest.fixture
def service(pool: Pool, photo_root: Path) -> DispatchService:
    return DispatchService(
        pool,
        clock=TickingClock(T0),
        photos=FilesystemPhotoStorage(photo_root),
        max_photo_bytes=1024,
    )


@pytest.fixture
async def known_sites(pool: Pool, service: DispatchService) -> None:
    """SITE (ACCOUNT's, two gateways) and OTHER_SITE, as the registry announces them,
    through the dispatch service's own subscriptions."""
    bus = InProcessBus()
    events = [
        _registration("gw-d-1", SITE, ACCOUNT),
        _registration("gw-d-2", SITE, ACCOUNT),
        _registration("gw-d-3", OTHER_SITE, None),
    ]
    async with cloud_events(pool, dispatch=service, outboxes=(), bus=bus):
        await bus.publish(events, timeout_s=10)
    assert bus.dead_letters == []


def _registration(gateway_id: str, site_id: int, account_id: str | None) -> Any:
    reg = GatewayRegistration(
        gateway_id=gateway_id,
        site_id=site_id,
        region=Region.AU,
        time_zone="Australia/Sydney",
        account_id=account_id,
        latitude=-33.87,
        longitude=151.21,
    )
    return gateway_registration_event(reg, registered=True)


def _key() -> str:
    return uuid.uuid4().hex


def _create(service: DispatchService, site_id: int = SITE, **extra: Any) -> WorkOrder:
    return service.create(
        Region.AU,
        site_id,
        "isolator_fault",
        "P2",
        "DC isolator tripped twice in 24 h",
        "Raised by hand",
        OPS,
        **extra,
    )


def _to_site(service: DispatchService, order: WorkOrder, mosie: str = MOSIE) -> WorkOrder:
    service.act(order.id, "assign", OPS, "operator", idempotency_key=_key(), technician=mosie)
    for action in ("accept", "start_travel", "arrive"):
        order = service.act(order.id, action, mosie, "mosie", idempotency_key=_key())
    return order


def _tick_all(service: DispatchService, order: WorkOrder) -> None:
    """Every task of the job's checklist in order, each with a photo when it needs one."""
    for task in load_checklists()[order.type].tasks:
        photo = service.add_photo(order.id, PNG, "image/png", MOSIE, _key()) if task.photo else None
        service.tick(order.id, task.id, MOSIE, _key(), photo.storage_key if photo else None)


def _outbox(pool: Pool) -> list[tuple[str, bool, list[str], str | None]]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT name, payload FROM dispatch.outbox ORDER BY id").fetchall()
    return [(n, p["on_site"], p["gateway_ids"], p["action"]) for n, p in rows]


def _count(pool: Pool, table: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(f"SELECT count(*) FROM dispatch.{table}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.usefixtures("known_sites")
def test_a_job_from_creation_to_resolved_is_audited_and_announced(
    service: DispatchService, pool: Pool
) -> None:
    order = _create(service)
    assert (order.status, order.account_id, order.version) == ("scheduled", ACCOUNT, 1)
    order = _to_site(service, order)
    assert (order.status, order.visits, order.version) == ("on_site", 1, 5)

    _tick_all(service, order)
    done = service.act(order.id, "resolve", MOSIE, "mosie", idempotency_key=_key())

    assert (done.status, done.assignee) == ("resolved", MOSIE)
    history = service.history(order.id, Scope.of_region(Region.AU))
    assert [(h.action, h.from_state, h.to_state, h.actor) for h in history] == [
        ("create", None, "scheduled", OPS),
        ("assign", "scheduled", "assigned", OPS),
        ("accept", "assigned", "accepted", MOSIE),
        ("start_travel", "accepted", "en_route", MOSIE),
        ("arrive", "en_route", "on_site", MOSIE),
        ("resolve", "on_site", "resolved", MOSIE),
    ]
    gateways = ["gw-d-1", "gw-d-2"]
    assert _outbox(pool) == [
        ("workorder.created", False, gateways, None),
        ("workorder.assigned", False, gateways, "assign"),
        ("workorder.accepted", False, gateways, "accept"),
        ("workorder.en_route", False, gateways, "start_travel"),
        ("workorder.on_site", True, gateways, "arrive"),
        ("workorder.resolved", False, gateways, "resolve"),
    ]


@pytest.mark.usefixtures("known_sites")
def test_resolve_before_the_checklist_is_done_is_refused_with_the_lifecycle_code(
    service: DispatchService,
) -> None:
    order = _to_site(service, _create(service))
    with pytest.raises(TransitionRefused) as refused:
        service.act(order.id, "resolve", MOSIE, "mosie", idempotency_key=_key())
    assert refused.value.code is RefusalCode.SAFETY_INCOMPLETE
    assert not refused.value.invalid
    assert service.get(order.id, Scope.everything()).status == "on_site"


@pytest.mark.usefixtures("known_sites")
def test_a_retried_act_applies_once_and_answers_the_same(
    service: DispatchService, pool: Pool
) -> None:
    order = _create(service)
    key = _key()
    first = service.act(order.id, "assign", OPS, "operator", idempotency_key=key, technician=MOSIE)
    again = service.act(order.id, "assign", OPS, "operator", idempotency_key=key, technician=MOSIE)

    assert again == first
    assert [h.action for h in service.history(order.id, Scope.everything())] == [
        "create",
        "assign",
    ]
    assert [name for name, *_ in _outbox(pool)] == ["workorder.created", "workorder.assigned"]
    with pytest.raises(RefusedError, match="idempotency key reused with another request"):
        service.act(
            order.id,
            "reassign",
            OPS,
            "operator",
            idempotency_key=key,
            technician=OTHER_MOSIE,
            reason="closer",
        )
    # The same key of another actor is another key.
    service.act(order.id, "accept", MOSIE, "mosie", idempotency_key=key)


@pytest.mark.usefixtures("known_sites")
def test_a_stale_version_is_a_conflict(service: DispatchService) -> None:
    order = _create(service)
    with pytest.raises(ConflictError, match="version 1, not 7"):
        service.act(
            order.id,
            "assign",
            OPS,
            "operator",
            idempotency_key=_key(),
            technician=MOSIE,
            expected_version=7,
        )


@pytest.mark.usefixtures("known_sites")
def test_a_mosie_reaches_only_their_own_jobs(service: DispatchService, pool: Pool) -> None:
    mine = _to_site(service, _create(service))
    theirs = _to_site(service, _create(service, OTHER_SITE), OTHER_MOSIE)
    before = _count(pool, "history")

    with pytest.raises(NotFoundError):
        service.act(theirs.id, "hold", MOSIE, "mosie", idempotency_key=_key(), reason="parts")
    with pytest.raises(NotFoundError):
        service.tick(theirs.id, "swms-reviewed", MOSIE, _key())
    with pytest.raises(NotFoundError):
        service.get(theirs.id, Scope.of_region(Region.AU), assignee=MOSIE)

    assert _count(pool, "history") == before
    assert [o.id for o in service.list_for_technician(MOSIE)] == [mine.id]
    assert [o.id for o in service.list_for_technician(OTHER_MOSIE)] == [theirs.id]
    assert {o.id for o in service.board(Region.AU)} == {mine.id, theirs.id}
    assert service.board(Region.US) == []
    customer = Scope.of_account(Region.AU, ACCOUNT)
    assert [o.id for o in service.board(Region.AU, scope=customer)] == [mine.id]


@pytest.mark.usefixtures("known_sites")
def test_work_before_the_safety_pre_start_is_refused(service: DispatchService, pool: Pool) -> None:
    order = _to_site(service, _create(service))
    first_work = next(t for t in load_checklists()["isolator_fault"].tasks if not t.safety)
    with pytest.raises(TickRefused) as refused:
        service.tick(order.id, first_work.id, MOSIE, _key())
    assert refused.value.code is TickRefusalCode.SAFETY_INCOMPLETE
    assert _count(pool, "checklist_ticks") == 0


@pytest.mark.usefixtures("known_sites")
def test_parts_come_off_the_regions_stock_exactly_and_never_below_zero(
    service: DispatchService,
) -> None:
    service.add_stock(Region.AU, "DC-ISO-32A", 3, "DC isolator 32 A")
    order = _to_site(service, _create(service))
    key = _key()
    used = service.use_part(order.id, "DC-ISO-32A", 2, MOSIE, key)
    assert service.use_part(order.id, "DC-ISO-32A", 2, MOSIE, key) == used  # retried: once
    assert used.stock_left == 1
    with pytest.raises(ConflictError, match="only 1 of DC-ISO-32A"):
        service.use_part(order.id, "DC-ISO-32A", 2, MOSIE, _key())
    with pytest.raises(NotFoundError):
        service.use_part(order.id, "NO-SUCH-PART", 1, MOSIE, _key())
    assert [(p.part_no, p.quantity) for p in service.stock(Region.AU)] == [("DC-ISO-32A", 1)]


@pytest.mark.usefixtures("known_sites")
def test_a_wrong_or_oversized_photo_is_refused_and_nothing_stored(
    service: DispatchService, pool: Pool, photo_root: Path
) -> None:
    order = _to_site(service, _create(service))
    with pytest.raises(RefusedError, match="not a JPEG, PNG or WebP"):
        service.add_photo(order.id, b"GIF89a" + b"\x00" * 32, "image/png", MOSIE, _key())
    with pytest.raises(RefusedError, match="limit 1024 bytes"):
        service.add_photo(order.id, PNG + b"\x00" * 1024, "image/png", MOSIE, _key())
    assert _count(pool, "photos") == 0
    assert _count(pool, "idempotency_keys") == 4  # the job's own transitions only
    assert not photo_root.exists() or not any(photo_root.rglob("*.*"))

    photo = service.add_photo(order.id, PNG, "image/png", MOSIE, _key())
    assert (photo_root / photo.storage_key).read_bytes() == PNG


@pytest.mark.usefixtures("known_sites")
def test_nothing_is_recorded_on_a_job_not_on_site(
    service: DispatchService, pool: Pool, photo_root: Path
) -> None:
    order = _create(service)
    service.act(order.id, "assign", OPS, "operator", idempotency_key=_key(), technician=MOSIE)
    service.act(order.id, "accept", MOSIE, "mosie", idempotency_key=_key())
    with pytest.raises(ConflictError, match="not on site"):
        service.add_photo(order.id, PNG, "image/png", MOSIE, _key())
    with pytest.raises(ConflictError, match="not on site"):
        service.sign(order.id, "Pat Customer", PNG, MOSIE, _key())
    assert _count(pool, "photos") + _count(pool, "signatures") == 0
    assert not photo_root.exists() or not any(photo_root.rglob("*.*"))


@pytest.mark.usefixtures("known_sites")
def test_the_customer_signs_once_per_visit_and_notes_are_kept(
    service: DispatchService, photo_root: Path
) -> None:
    order = _to_site(service, _create(service))
    signed = service.sign(order.id, "Pat Customer", PNG, MOSIE, _key())
    assert (signed.visit, signed.signer_name, signed.bytes) == (1, "Pat Customer", len(PNG))
    assert (photo_root / signed.storage_key).read_bytes() == PNG
    with pytest.raises(ConflictError, match="signed for this visit already"):
        service.sign(order.id, "Pat Customer", PNG, MOSIE, _key())
    assert sorted(p.name for p in photo_root.rglob("*.png")) == [signed.storage_key.split("/")[-1]]
    note = service.add_note(order.id, "Gate code 1234", MOSIE, "mosie", _key())
    assert (note.by, note.text) == (MOSIE, "Gate code 1234")
    with pytest.raises(NotFoundError):
        service.add_note(order.id, "Not mine", OTHER_MOSIE, "mosie", _key())


@pytest.mark.usefixtures("known_sites")
def test_performance_counts_resolves_sla_and_first_time_fixes(service: DispatchService) -> None:
    order = _to_site(service, _create(service, resolve_by=T0 + timedelta(days=1)))
    _tick_all(service, order)
    service.act(order.id, "resolve", MOSIE, "mosie", idempotency_key=_key())
    service.act(order.id, "verify", "system", "system", idempotency_key=_key(), reason="cleared")

    seen = service.performance(Region.AU, MOSIE, since=T0, until=T0 + timedelta(days=2))
    assert (seen.jobs_done, seen.sla_measured, seen.sla_met) == (1, 1, 1)
    assert (seen.verified, seen.first_time_fixes, seen.first_time_fix_rate) == (1, 1, 1.0)
    nobody = service.performance(Region.AU, OTHER_MOSIE, since=T0, until=T0 + timedelta(days=2))
    assert (nobody.jobs_done, nobody.first_time_fix_rate) == (0, None)


def test_a_work_order_for_a_site_dispatch_does_not_know_is_refused(
    service: DispatchService,
) -> None:
    with pytest.raises(NotFoundError, match="no site 5 in au"):
        _create(service)
