"""Credential rotation (issue 12), with a real agent, a secure Mosquitto and real ingest
into PostgreSQL; "nothing lost" = every seq the agent produced stored (watermark = highest
seq, no open gap).

Certificate: the new certificate (same CN) replaces the files the agent reads at its next
connect; a broker restart makes it reconnect; the old one is then revoked and the broker
restarted again — the agent can only come back with the new one. Password: below.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from broker_config import pki
from broker_config.acl import render_acl
from broker_config.files import write_secret
from broker_config.passwords import mosquitto_hash, render_password_file
from cloud.bootstrap import run_ingest
from cloud.registry import RegistryService
from contracts.identities import BrokerIdentity
from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import BrokerSecurity, PrivateMosquitto
from simulators.device_site import DeviceSite, region_site
from tests.integration.harness import AgentProcess, site_agent_config, stream_progress
from tests.integration.test_cloud_ingest import GW, _settings, registry
from tests.waiting import until

pytestmark = pytest.mark.integration
__all__ = ["registry"]  # fixture used here

INGEST_USER, INGEST_SECRET = "_ingest/au-0", "ingest-secret"


def _install(issued: pki.IssuedFiles, live: Path) -> None:
    """Put a certificate where the agent reads it (what copying it to the gateway does)."""
    for src, name in ((issued.cert_file, "client.crt"), (issued.key_file, "client.key")):
        tmp = live / f".{name}.new"
        shutil.copyfile(src, tmp)
        tmp.chmod(0o600)
        tmp.replace(live / name)


async def _progress_past(database_url: str, seq: int, what: str) -> int:
    async def moved() -> bool:
        return (await asyncio.to_thread(stream_progress, database_url, GW))[0] > seq

    await until(moved, 30, what)
    return (await asyncio.to_thread(stream_progress, database_url, GW))[0]


@contextlib.asynccontextmanager
async def _ingest_and_agent(
    database_url: str, mosq: PrivateMosquitto, tmp_path: Path, **agent: Any
) -> AsyncIterator[Path]:
    """Real ingest (as ``_ingest/au-0``) and a real agent process of ``GW`` polling a
    simulated site, with ``agent`` settings; yields the agent's log. On the way out:
    every seq the agent produced is stored (watermark = highest seq, no open gap)."""
    settings = _settings(
        database_url,
        mosq.url,
        mqtt_username=INGEST_USER,
        mqtt_password=SecretStr(INGEST_SECRET),
        mqtt_ca_file=mosq.ca_file,
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    log = tmp_path / "agent.log"
    async with DeviceSite(region_site(site_id=GW, region="au", update_period_s=0.3)) as sim:
        ingest = asyncio.create_task(run_ingest(settings, stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 30)
        url = agent.pop("mqtt_url", mosq.url)
        config = site_agent_config(tmp_path / "agent.yaml", GW, url, sim.port, **agent)
        AgentSettings.from_yaml(config)  # the file is what a gateway would load
        process = AgentProcess(config, log)
        try:
            yield log

            async def all_stored() -> bool:
                mark, high, gaps = await asyncio.to_thread(stream_progress, database_url, GW)
                return mark == high and gaps == 0

            await until(all_stored, 30, "every seq the agent produced stored, no gap")
        finally:
            await asyncio.to_thread(process.stop)
            stop.set()
            await asyncio.wait_for(ingest, 30)


def _identities() -> str:
    return render_acl(["au"], [BrokerIdentity(GW, "au"), BrokerIdentity(INGEST_USER, "au")])


async def test_a_rotated_certificate_keeps_the_gateway_publishing_without_loss(
    database_url: str, registry: RegistryService, tmp_path: Path
) -> None:
    ca = tmp_path / "ca"
    pki.init(ca)
    first = pki.issue_client(ca, GW, tmp_path / "first")
    live = tmp_path / "live"
    live.mkdir()
    _install(first, live)
    passwords = render_password_file({INGEST_USER: mosquitto_hash(INGEST_SECRET)})
    with PrivateMosquitto(security=BrokerSecurity(passwords, _identities(), pki_dir=ca)) as mosq:
        async with _ingest_and_agent(
            database_url,
            mosq,
            tmp_path,
            mqtt_url=f"mqtts://127.0.0.1:{mosq.cert_port}",
            mqtt_ca_file=str(mosq.ca_file),
            mqtt_cert_file=str(live / "client.crt"),
            mqtt_key_file=str(live / "client.key"),
        ):
            seq = await _progress_past(database_url, 0, "stored under the first cert")
            _install(pki.issue_client(ca, GW, tmp_path / "second"), live)  # overlap
            await asyncio.to_thread(mosq.stop)
            await asyncio.to_thread(mosq.start)  # reconnect: now with the second
            seq = await _progress_past(database_url, seq, "stored after the switch")
            pki.revoke(ca, serial=first.record.serial)  # --finish
            mosq.reload()
            await asyncio.to_thread(mosq.stop)
            await asyncio.to_thread(mosq.start)  # the first is refused from here on
            await _progress_past(database_url, seq, "stored after revoking the first")


async def test_a_rotated_password_costs_one_reconnect_and_nothing_lost(
    database_url: str, registry: RegistryService, tmp_path: Path
) -> None:
    """The hand-over: the new secret goes where the agent reads it at each connect (its
    live session goes on), then the broker reloads with the new hash and drops the
    session once; the agent comes back with the new secret, its buffer covering the gap."""
    secret_file = tmp_path / "mqtt.secret"
    write_secret(secret_file, b"first-secret")

    def passwords(gateway_secret: str) -> str:
        return render_password_file(
            {GW: mosquitto_hash(gateway_secret), INGEST_USER: mosquitto_hash(INGEST_SECRET)}
        )

    with PrivateMosquitto(
        security=BrokerSecurity(passwords("first-secret"), _identities())
    ) as mosq:
        async with _ingest_and_agent(
            database_url,
            mosq,
            tmp_path,
            env="production",
            mqtt_username=GW,
            mqtt_password_file=str(secret_file),
            mqtt_ca_file=str(mosq.ca_file),
        ) as log:
            seq = await _progress_past(database_url, 0, "stored with the first secret")
            write_secret(secret_file, b"second-secret", overwrite=True)
            mosq.reload(passwords=passwords("second-secret"))
            await _progress_past(database_url, seq, "stored with the second secret")
    sessions = log.read_text(errors="replace").count("connected (session")
    assert sessions == 2, f"{sessions} sessions: the rotation cost more than one reconnect"
