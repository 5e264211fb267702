"""The health endpoint's bodies from a plain status snapshot: no agent, no sockets.

``/healthz`` and ``/metrics`` read only :class:`edge_agent.status.AgentStatus` (and the
buffer's figures), so any source of those — here a fixed one — renders them.
"""

from __future__ import annotations

from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from edge_agent.health import AgentMetrics, health_snapshot
from edge_agent.status import AgentStatus, BufferStats, DeviceStatus

STATUS = AgentStatus(
    gateway_id="gw-1",
    region="au",
    stream_id="00000000-0000-4000-8000-000000000001",
    mqtt_connected=True,
    stored_upto_seq=7,
    devices=(
        DeviceStatus("inv-1", "site", 1, "online", None),
        DeviceStatus("met-2", "site", 2, "asleep", None),
    ),
    published=9,
    resent=1,
    sessions=3,
    stored_refused=1,
    too_large=2,
    too_large_readings=3,
    batches=8,
    dropped_batches=0,
    held=2,
    held_lost=1,
    commands={"done": 4, "rejected": 1},
    configs={"applied": 1},
    refusals={"not applicable": 1},
    writes={"ok": 6},
)


class FixedSource:
    def __init__(self, status: AgentStatus) -> None:
        self._status = status

    def status(self) -> AgentStatus:
        return self._status

    async def buffer_stats(self) -> BufferStats:
        return BufferStats(rows=3, unsent=1, bytes=1200, oldest_age_s=0.5)


async def test_healthz_is_ok_while_connected_and_every_device_online_or_asleep() -> None:
    body = await health_snapshot(FixedSource(STATUS))
    assert body["status"] == "ok"
    assert body["devices"] == {
        "inv-1": {"status": "online", "endpoint": "site", "unit_id": 1, "last_error": None},
        "met-2": {"status": "asleep", "endpoint": "site", "unit_id": 2, "last_error": None},
    }
    assert (body["stored_upto_seq"], body["published"], body["batches"]) == (7, 9, 8)


async def test_healthz_is_degraded_when_a_device_is_unreachable_or_mqtt_down() -> None:
    dead = DeviceStatus("inv-1", "site", 1, "unreachable", "connect refused")
    assert (await health_snapshot(FixedSource(replace(STATUS, devices=(dead,)))))[
        "status"
    ] == "degraded"
    down = replace(STATUS, mqtt_connected=False)
    assert (await health_snapshot(FixedSource(down)))["status"] == "degraded"


async def test_metrics_render_the_snapshot_and_the_buffer() -> None:
    source = FixedSource(STATUS)
    metrics = AgentMetrics(source)
    body = await health_snapshot(source, metrics)
    assert body["buffer"] == {"rows": 3, "unsent": 1, "bytes": 1200, "oldest_age_s": 0.5}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    assert samples[("potr_agent_mqtt_reconnects_total", ())] == 2
    assert samples[("potr_agent_held_messages", ())] == 2
    assert samples[("potr_agent_held_lost_total", ())] == 1
    assert samples[("potr_agent_stored_refused_total", ())] == 1
    assert samples[("potr_agent_too_large_total", ())] == 2
    assert samples[("potr_agent_too_large_readings_total", ())] == 3
    assert samples[("potr_agent_buffer_unsent_rows", ())] == 1
    assert samples[("potr_agent_control_refusals_total", (("code", "not applicable"),))] == 1
    state = (("device", "met-2"), ("endpoint", "site"), ("state", "asleep"), ("unit_id", "2"))
    assert samples[("potr_agent_device_state", state)] == 1
