"""The embedded amqtt demo broker enforces passwords and the rendered per-gateway ACL
(through PotrAclPlugin), as far as amqtt can (pitfalls.md: retained messages leak)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from broker_config.acl import render_acl
from broker_config.passwords import amqtt_hash, render_password_file
from contracts.identities import BrokerIdentity
from potr.servers.amqtt_broker import EmbeddedAmqtt
from tests.integration.mqtt_probe import Probe

USERS = {"gw-one": "pw-one", "gw-two": "pw-two", "_ingest/au-0": "pw-ingest"}


@pytest.fixture
def auth_files(tmp_path: Path) -> tuple[Path, Path]:
    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    pw.write_text(render_password_file({u: amqtt_hash(p) for u, p in USERS.items()}))
    acl.write_text(render_acl(["au"], [BrokerIdentity(u, "au") for u in USERS]))
    return pw, acl


async def test_amqtt_refuses_strangers_and_forgeries(auth_files: tuple[Path, Path]) -> None:
    pw, acl = auth_files
    async with EmbeddedAmqtt(password_file=pw, acl_file=acl) as broker:

        def probe(user: str | None, password: str | None = None) -> Probe:
            return Probe(broker.port, user, password, protocol=paho.MQTTv311)

        def scenario() -> None:
            assert not probe(None).connect(), "anonymous connect accepted"
            assert not probe("gw-one", "wrong").connect(), "wrong password accepted"
            ingest = probe("_ingest/au-0", USERS["_ingest/au-0"])
            assert ingest.connect(), ingest.reason
            ingest.subscribe("potr/v1/au/+/telemetry", "potr/v1/us/+/telemetry")
            one = probe("gw-one", USERS["gw-one"])
            assert one.connect(), one.reason
            one.publish("potr/v1/au/gw-two/telemetry", b"forged")
            one.publish("potr/v1/us/gw-one/telemetry", b"other region")
            one.publish("potr/v1/au/gw-one/telemetry", b"marker")
            assert ingest.wait_for("potr/v1/au/gw-one/telemetry", b"marker")
            assert ingest.topics() == ["potr/v1/au/gw-one/telemetry"]
            for p in (one, ingest):
                p.close()

        await asyncio.wait_for(asyncio.to_thread(scenario), 30)
