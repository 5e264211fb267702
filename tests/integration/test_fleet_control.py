"""Virtual gateways answer signed ``cmd``/``config`` like the agent, over a real Mosquitto.

The test plays the cloud: it signs documents with a generated key (the fleet trusts its
public key file), publishes them on the gateways' topics (configs retained) and
subscribes to ``cmd_ack`` / ``config_state``. Failure injection: one named gateway and a
seeded fraction fail, the same ones on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson
import psycopg
import pytest

from contracts.messages import CmdAck, ConfigState
from contracts.signing import SigningKey, sign_document
from contracts.timeutil import to_wire, utc_now
from contracts.topics import Kind, Region, parse_topic, topic
from potr.fleet import VirtualFleetRun, run_virtual_fleet
from potr.servers.mosquitto import PrivateMosquitto
from simulators.fleet import FleetSpec
from simulators.fleet.spec import failing_gateways
from tests.waiting import until

pytestmark = pytest.mark.integration

WAIT_S = 20.0


class Cloud:
    """What the cloud hears from the gateways: acks by command id, states by gateway."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.acks: dict[str, list[CmdAck]] = defaultdict(list)
        self.states: dict[str, list[ConfigState]] = defaultdict(list)
        self.online: set[str] = set()
        self.batches: dict[str, int] = defaultdict(int)
        self._changed = asyncio.Event()

    async def run(self) -> None:
        async for message in self.client.messages:
            where = parse_topic(message.topic.value)
            payload = message.payload
            assert isinstance(payload, bytes)
            if where.kind is Kind.CMD_ACK:
                ack = CmdAck.model_validate_json(payload)
                self.acks[str(ack.id)].append(ack)
            elif where.kind is Kind.CONFIG_STATE:
                self.states[where.gateway_id].append(ConfigState.model_validate_json(payload))
            elif where.kind is Kind.TELEMETRY:
                self.batches[where.gateway_id] += 1
            elif where.kind is Kind.STATE:
                if orjson.loads(payload).get("online"):
                    self.online.add(where.gateway_id)
                else:
                    self.online.discard(where.gateway_id)
            self._changed.set()

    async def until(self, ready: Callable[[], bool], what: str) -> None:
        await until(ready, WAIT_S, what, changed=self._changed)

    def statuses(self, command_id: str) -> list[str]:
        return [a.status.value for a in self.acks[command_id]]

    async def publish(self, gateway: str, kind: Kind, doc: Any, *, retain: bool = False) -> None:
        payload = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        await self.client.publish(topic(Region.AU, gateway, kind), payload, qos=1, retain=retain)


@contextlib.asynccontextmanager
async def cloud(url: str) -> AsyncIterator[Cloud]:
    parts = urlsplit(url)
    async with aiomqtt.Client(parts.hostname or "127.0.0.1", parts.port or 1883) as client:
        for kind in (Kind.CMD_ACK, Kind.CONFIG_STATE, Kind.STATE, Kind.TELEMETRY):
            await client.subscribe(f"potr/v1/+/+/{kind.value}", qos=1)
        c = Cloud(client)
        task = asyncio.create_task(c.run())
        try:
            yield c
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


@contextlib.asynccontextmanager
async def fleet(
    spec: FleetSpec, url: str, database_url: str | None = None
) -> AsyncIterator[list[VirtualFleetRun]]:
    """The fleet runs in the block; the list gets its result once it has stopped."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_virtual_fleet(spec, mqtt_url=url, database_url=database_url, stop=stop)
    )
    out: list[VirtualFleetRun] = []
    try:
        yield out
    finally:
        stop.set()
        async with asyncio.timeout(60):
            out.append(await task)


def command(key: SigningKey, gateway: str, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "gateway_id": gateway,
        "name": "set_power_limit",
        "device": f"INV-{gateway}",
        "args": {"pct": 50},
        "expires_at": to_wire(utc_now() + timedelta(minutes=5)),
        "issued_by": "test@potr",
    }
    doc.update(over)
    return sign_document(doc, key)


def config(key: SigningKey, gateway: str, version: int, settings: dict[str, Any]) -> bytes:
    doc = {
        "v": 1,
        "gateway_id": gateway,
        "version": version,
        "profile": {"id": "au-default", "region": "au", "version": 1},
        "devices": {f"INV-{gateway}": settings, f"MTR-{gateway}": {}},
        "not_after": to_wire(utc_now() + timedelta(hours=1)),
        "issued_by": "test@potr",
    }
    return orjson.dumps(sign_document(doc, key))


def spec_for(pub: Path, **over: Any) -> FleetSpec:
    base: dict[str, Any] = {
        "count": 5,
        "id_prefix": "vc",
        "cadence_s": 60.0,
        "speed": 60.0,  # a batch per gateway per real second: telemetry keeps flowing
        "workers": 1,
        "connect_rate": 100.0,
        "drain_timeout_s": 10.0,
        "trusted_key_files": (pub,),
        "fail_gateways": ("vc-00001",),
        "fail_fraction": 0.3,
        "seed": 7,  # with 0.3: vc-00004 (asserted below)
    }
    base.update(over)
    return FleetSpec.model_validate(base)


@pytest.fixture
def key(tmp_path: Path) -> tuple[SigningKey, Path]:
    k = SigningKey.generate()
    pub = tmp_path / "cloud.pub.pem"
    pub.write_bytes(k.public_pem())
    return k, pub


async def test_commands_and_configs_are_verified_applied_and_answered(
    mosquitto: PrivateMosquitto, key: tuple[SigningKey, Path]
) -> None:
    k, pub = key
    spec = spec_for(pub)
    ids = [f"vc-{i:05d}" for i in range(5)]
    failing = set(failing_gateways(spec))
    assert failing == {"vc-00001", "vc-00004"}
    gw0, gw1 = ids[0], ids[1]
    settings = {"power_limit_pct": 70, "v_ref": 235}

    async with cloud(mosquitto.url) as c:
        # The desired config is retained before the fleet connects (delivered on subscribe).
        v2 = {g: config(k, g, 2, settings) for g in ids}
        for g in ids:
            await c.publish(g, Kind.CONFIG, v2[g], retain=True)
        async with fleet(spec, mosquitto.url) as result:
            await c.until(lambda: all(c.states[g] for g in ids), "config_state from every gateway")
            for g in ids:
                (state,) = c.states[g]
                assert state.version == 2
                inv = f"INV-{g}"
                if g in failing:
                    assert state.status == "failed"
                    assert state.devices == {inv: "failed", f"MTR-{g}": "applied"}
                    assert f"{inv}.power_limit_pct (123.WMaxLimPct)" in state.detail
                    assert state.points[inv] == {"power_limit_pct": 100, "v_ref": 230}
                else:
                    assert state.status == "applied", state.detail
                    assert state.devices == {inv: "applied", f"MTR-{g}": "applied"}
                    assert state.points == {inv: settings, f"MTR-{g}": {}}
                    assert state.detail == ""
            await c.until(lambda: c.online >= set(ids), "every gateway online")

            # ----- commands -------------------------------------------------------------
            valid = command(k, gw0)
            too_high = command(k, gw0, args={"pct": 150})
            forged = command(k, gw0)
            forged["args"] = {"pct": 5}
            foreign = command(k, "vc-00002")  # on gw0's topic, addressed to another gateway
            expired = command(k, gw0, expires_at=to_wire(utc_now() - timedelta(seconds=1)))
            fails = command(k, gw1)
            ping = command(k, "vc-00004", device=None, name="ping", args={})
            for g, doc in [
                (gw0, valid),
                (gw0, too_high),
                (gw0, forged),
                (gw0, foreign),
                (gw0, expired),
                (gw1, fails),
                ("vc-00004", ping),
            ]:
                await c.publish(g, Kind.CMD, doc)
            await c.until(lambda: len(c.acks[valid["id"]]) == 2, "valid command done")
            await c.publish(gw0, Kind.CMD, valid)  # replayed
            await c.until(
                lambda: (
                    len(c.acks[valid["id"]]) == 3
                    and all(c.acks[d["id"]] for d in (too_high, forged, foreign, expired))
                    and len(c.acks[fails["id"]]) == 2
                    and len(c.acks[ping["id"]]) == 2
                ),
                "every ack",
            )
            assert c.statuses(valid["id"]) == ["accepted", "done", "rejected"]
            assert c.acks[valid["id"]][1].detail == "read back 123.WMaxLimPct=50, 123.WMaxLim_Ena=1"
            assert c.acks[valid["id"]][2].detail.startswith("replayed:")
            (high,) = c.acks[too_high["id"]]
            assert high.status.value == "rejected"
            assert high.detail == (
                "args.pct: 150 is out of range (limit 0 <= power_limit_pct <= 100 %)"
            )
            assert c.acks[forged["id"]][0].detail.startswith("bad signature")
            assert c.acks[foreign["id"]][0].detail.startswith("wrong gateway")
            assert c.statuses(expired["id"]) == ["expired"]
            assert c.statuses(fails["id"]) == ["accepted", "failed"]
            assert "injected failure" in c.acks[fails["id"]][1].detail
            assert c.statuses(ping["id"]) == ["accepted", "done"]
            assert c.acks[ping["id"]][1].detail == "pong"
            # every gateway's answers share its one stream, seqs increasing
            seqs = [a.seq for a in c.acks[valid["id"]]]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == 3

            # ----- config versions ------------------------------------------------------
            await c.publish(gw0, Kind.CONFIG, v2[gw0], retain=True)  # equal: re-reported
            await c.until(lambda: len(c.states[gw0]) == 2, "re-reported config_state")
            again = c.states[gw0][1]
            assert (again.version, again.status, again.hash) == (
                2,
                "applied",
                c.states[gw0][0].hash,
            )
            assert again.seq > c.states[gw0][0].seq
            older = config(k, gw0, 1, {"power_limit_pct": 10})
            await c.publish(gw0, Kind.CONFIG, older)
            await c.until(lambda: len(c.states[gw0]) == 3, "config_state for the older version")
            refused = c.states[gw0][2]
            assert refused.detail.startswith("refused config: stale version")
            assert (refused.version, refused.status) == (2, "applied")
            v3 = config(k, gw0, 3, {"power_limit_pct": 40, "v_ref": 300})  # v_ref too high
            await c.publish(gw0, Kind.CONFIG, v3, retain=True)
            await c.until(lambda: len(c.states[gw0]) == 4, "config_state for version 3")
            bad = c.states[gw0][3]
            assert (bad.version, bad.status) == (3, "failed")
            assert bad.detail.startswith(f"devices.INV-{gw0}.v_ref: 300 is out of range")
            await c.publish(gw0, Kind.CONFIG, v2[gw0], retain=True)  # restore for run 2
            await c.until(lambda: len(c.states[gw0]) == 5, "config_state for version 2 again")
            assert c.states[gw0][4].detail.startswith("refused config: stale version")
            await c.until(lambda: all(c.batches[g] >= 2 for g in ids), "telemetry meanwhile")
        summary = result[0].summary()
        assert summary["control"]["configs"] == 5 + 4
        assert summary["control"]["commands"] == 8
        assert summary["control"]["failing_gateways"] == 2
        assert summary["batches"] >= 10
        assert summary["sent"] == summary["acked"]

        # ----- the same seed fails the same gateways on a second run -------------------
        first_failed = {g for g in ids if c.states[g][0].status == "failed"}
        c.states.clear()
        async with fleet(spec, mosquitto.url):
            await c.until(lambda: all(c.states[g] for g in ids), "config_state on the 2nd run")
        second_failed = {g for g in ids if c.states[g][0].status == "failed"}
        assert first_failed == second_failed == failing


async def test_without_trusted_keys_everything_is_refused(
    mosquitto: PrivateMosquitto, key: tuple[SigningKey, Path]
) -> None:
    k, pub = key
    spec = spec_for(pub, count=1, trusted_key_files=(), fail_gateways=(), fail_fraction=0.0)
    g = "vc-00000"
    async with cloud(mosquitto.url) as c:
        await c.publish(g, Kind.CONFIG, config(k, g, 1, {"power_limit_pct": 70}), retain=True)
        async with fleet(spec, mosquitto.url):
            await c.until(lambda: bool(c.states[g]), "config_state")
            await c.until(lambda: g in c.online, "gateway online")
            doc = command(k, g)
            await c.publish(g, Kind.CMD, doc)
            await c.until(lambda: bool(c.acks[doc["id"]]), "ack")
        (state,) = c.states[g]
        assert state.version is None
        assert state.status == "pending"
        assert state.detail.startswith("refused config: untrusted key")
        assert c.statuses(doc["id"]) == ["rejected"]
        assert c.acks[doc["id"]][0].detail.startswith("untrusted key")


async def test_ingest_stores_the_answers_on_the_gateways_stream(
    mosquitto: PrivateMosquitto, database_url: str, key: tuple[SigningKey, Path]
) -> None:
    k, pub = key
    spec = spec_for(pub, count=2, fail_gateways=(), fail_fraction=0.0)
    ids = ["vc-00000", "vc-00001"]
    async with cloud(mosquitto.url) as c:
        for g in ids:
            await c.publish(g, Kind.CONFIG, config(k, g, 1, {"power_limit_pct": 60}), retain=True)
        async with fleet(spec, mosquitto.url, database_url) as result:
            await c.until(lambda: all(c.states[g] for g in ids), "config_state")
            await c.until(lambda: c.online >= set(ids), "gateways online")
            doc = command(k, ids[1])
            await c.publish(ids[1], Kind.CMD, doc)
            await c.until(lambda: len(c.acks[doc["id"]]) == 2, "acks")
    s = result[0].summary()
    db = s["database"]
    assert s["control"]["stored"] == 2 + 2  # two config states, two acks
    assert s["unstored"] == 0
    assert db["stored_batches"] == db["high_seq_sum"] == s["batches"] + 4
    assert db["open_gaps"] == 0
    assert db["dead_letters"] == 0
    with psycopg.connect(database_url) as conn:
        acks = conn.execute(
            "SELECT status FROM ingest.cmd_acks WHERE command_id = %s ORDER BY seq", (doc["id"],)
        ).fetchall()
        states = conn.execute(
            "SELECT gateway_id, version, status FROM ingest.config_states ORDER BY gateway_id"
        ).fetchall()
    assert [r[0] for r in acks] == ["accepted", "done"]
    assert states == [("vc-00000", 1, "applied"), ("vc-00001", 1, "applied")]
