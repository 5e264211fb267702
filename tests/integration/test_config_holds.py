"""A technician on site holds the site's gateways (issue 17), against real PostgreSQL and
Mosquitto: commands and configs to a held gateway are stored (``held``) but not
published until the last work order on site leaves; one that expired meanwhile ends
expired. Dispatch's ``workorder.*`` events reach the config service's consumer over the
in-process bus, as in production.

A fake gateway subscribed to the gateway's ``cmd``/``config`` topics is the witness of
what was published: the first message it receives after the release is the held
command, so nothing reached it before.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cloud.bootstrap import cloud_events
from cloud.config import (
    CommandIn,
    ConfigIn,
    RollbackIn,
    run_config_loops,
)
from cloud.events.bus import InProcessBus
from cloud.events.outbox import Event
from cloud.events.workorders import WorkOrderChanged, workorder_event_name
from contracts.messages import ProfileRef
from contracts.timeutil import utc_now
from contracts.topics import Region
from tests.integration.config_harness import FakeGateway, Stack, config_stack
from tests.integration.test_config_service import _birth

pytestmark = pytest.mark.integration

GW = "gw-hold-1"
OTHER = "gw-hold-2"
INV = "SN-INV-1"
PROFILE = ProfileRef.model_validate({"id": "au-4777", "region": "au", "version": 1})


@pytest.fixture
def stack(database_url: str, mosquitto_url: str, tmp_path: Path) -> Iterator[Stack]:
    births = [_birth(GW), _birth(OTHER)]
    with config_stack(
        database_url, mosquitto_url, tmp_path, pool_name="test-config-holds", births=births
    ) as stack:
        yield stack


@pytest.fixture
def gateway(stack: Stack) -> Iterator[FakeGateway]:
    with FakeGateway(stack.mqtt, GW, f"fake-{uuid.uuid4().hex[:8]}") as gw:
        yield gw


T0 = datetime.fromisoformat("2025-03-03T09:00:00+11:00")


def _work_order(wo: int, status: str, on_site: bool, minutes: int, *gateways: str) -> Event:
    change = WorkOrderChanged(
        work_order_id=wo,
        region="au",
        site_id=40 + wo,
        gateway_ids=list(gateways),
        type="isolator_trip",
        priority="P2",
        status=status,
        actor="E1001",
        at=T0 + timedelta(minutes=minutes),
        on_site=on_site,
    )
    return Event(
        name=workorder_event_name(status),
        region=Region.AU,
        source="dispatch",
        occurred_at=change.at,
        payload=change.model_dump(mode="json"),
    )


def _holds(stack: Stack) -> list[tuple[str, int]]:
    with stack.pool.connection() as conn:
        rows = conn.execute(
            "SELECT gateway_id, work_order_id FROM config.holds ORDER BY 1, 2"
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _hold_audit(stack: Stack, gateway_id: str = GW) -> list[tuple[str, str, str]]:
    """(action, target, outcome) of the gateway's hold rows, oldest first."""
    return [
        (e.action, e.target or "", e.outcome)
        for e in reversed(stack.service.audit(gateway_id))
        if e.action.startswith("gateway.")
    ]


def _published(stack: Stack) -> tuple[int, int]:
    """One publishing round, as the service's loop runs it: (commands, configs)."""
    done = stack.service.publish_pending()
    return done.commands, done.configs


def _hold(stack: Stack, event: Event) -> None:
    stack.tracker.apply_work_order(event.id, WorkOrderChanged.model_validate(event.payload))


def test_what_is_sent_to_a_held_gateway_waits_until_the_last_work_order_leaves(
    stack: Stack, gateway: FakeGateway
) -> None:
    _hold(stack, _work_order(1, "on_site", True, 0, GW))
    _hold(stack, _work_order(2, "on_site", True, 5, GW, OTHER))

    kept = stack.service.send_command(GW, CommandIn(name="ping", reason="held"), "op-1")
    assert (kept.status, kept.held_by, kept.published_at) == ("held", [1, 2], None)
    short = stack.service.send_command(
        GW, CommandIn(name="ping", expires_in_s=1.0, reason="short"), "op-1"
    )
    assert short.status == "held"
    pushes = [
        stack.service.set_config(
            GW, ConfigIn(profile=PROFILE, devices={INV: {"v_ref": v}}, reason="tune"), "admin-1"
        )
        for v in (230.0, 240.0)
    ]
    back = stack.service.rollback(GW, RollbackIn(reason="240 trips"), "admin-1")
    assert [(p.version, p.status) for p in pushes] == [(1, "held"), (2, "held")]
    assert (back.version, back.status, back.held_by) == (3, "held", [1, 2])
    view = stack.service.show_config(GW)
    assert [(h.version, h.status) for h in view.history] == [
        (3, "held"),
        (2, "superseded"),
        (1, "superseded"),
    ]
    assert [d.status for d in view.devices] == ["held"]
    assert _published(stack) == (0, 0)

    # The short command's lifetime ends while held: the cloud expires it, as any other.
    assert stack.tracker.expire_overdue(now=utc_now() + timedelta(seconds=5)) == 1
    # One work order leaves: the other still holds the gateway.
    _hold(stack, _work_order(1, "resolved", False, 30, GW))
    still = stack.service.get_command(kept.id)
    assert still is not None
    assert (still.status, still.held_by) == ("held", [2])
    assert _published(stack) == (0, 0)

    _hold(stack, _work_order(2, "resolved", False, 40, GW, OTHER))
    assert _holds(stack) == []
    assert _published(stack) == (1, 1)
    kind, raw = gateway.next()
    assert (kind, raw["id"]) == ("cmd", str(kept.id))
    kind, raw = gateway.next()
    assert (kind, raw["version"], raw["devices"]) == ("config", 3, {INV: {"v_ref": 230.0}})
    expired = stack.service.get_command(short.id)
    assert expired is not None
    assert (expired.status, expired.closed_by, expired.published_at) == ("expired", "cloud", None)
    published = stack.service.get_command(kept.id)
    assert published is not None
    assert (published.status, published.held_by) == ("pending", [])
    assert published.published_at is not None
    assert _hold_audit(stack) == [
        ("gateway.held", "work order 1", "held"),
        ("gateway.held", "work order 2", "held"),
        ("gateway.released", "work order 1", "still held"),
        ("gateway.released", "work order 2", "released"),
    ]


async def test_workorder_events_hold_and_release_and_redelivery_changes_nothing(
    stack: Stack, gateway: FakeGateway
) -> None:
    bus = InProcessBus()
    arrived = _work_order(7, "on_site", True, 0, GW)
    left = _work_order(7, "resolved", False, 45, GW)
    async with cloud_events(stack.pool, config=stack.tracker, outboxes=(), bus=bus) as runtime:
        await runtime.bus.publish([arrived])
        assert _holds(stack) == [(GW, 7)]
        sent = await asyncio.to_thread(
            stack.service.send_command, GW, CommandIn(name="ping", reason="held"), "op-1"
        )
        assert (sent.status, sent.held_by) == ("held", [7])

        # Redelivered, and an older event arriving late (en route, before arrival):
        # neither changes anything.
        en_route = _work_order(7, "en_route", False, -20, GW)
        await runtime.bus.publish([arrived, en_route])
        assert _holds(stack) == [(GW, 7)]
        assert _hold_audit(stack) == [("gateway.held", "work order 7", "held")]

        stop = asyncio.Event()
        loops = asyncio.create_task(
            run_config_loops(stack.service, stack.tracker, stop, interval_s=0.1)
        )
        try:
            await runtime.bus.publish([left])
            # The service's loop publishes what the release freed within its interval.
            kind, raw = await asyncio.to_thread(gateway.next)
            assert (kind, raw["id"]) == ("cmd", str(sent.id))
            await runtime.bus.publish([left, arrived])
        finally:
            stop.set()
            await loops
        assert bus.dead_letters == []
    assert _holds(stack) == []
    assert _hold_audit(stack) == [
        ("gateway.held", "work order 7", "held"),
        ("gateway.released", "work order 7", "released"),
    ]
