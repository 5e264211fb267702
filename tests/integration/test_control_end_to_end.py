"""The control path end to end (issue 7 acceptance): config service → Mosquitto → agents →
simulated devices over Modbus TCP → cmd_ack / config_state → ingest → events → config
service, on three simulated sites.

Every claim about a device is read from the simulator itself (what its registers serve),
never from what the agent or the cloud says. One config reaches three sites (curve
included) and shows in their telemetry; a write failing on one site restores that
device's previous values; a rollback returns every device to the earlier settings; a
value changed behind an agent's back is reported as drift; a command sent while its
gateway is offline ends ``done`` after reconnect, one offline past its expiry ``expired``;
a config for a sleeping inverter is pending, then applied when it wakes (decision 153).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import run_services
from cloud.config import (
    CommandIn,
    ConfigIn,
    ConfigService,
    ConfigSettings,
    RollbackIn,
    public_key_path,
    write_key_file,
)
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from contracts.messages import ProfileRef
from edge_agent.settings import AgentSettings
from simulators.device_site import DeviceSite
from tests.integration.control_harness import (
    INVERTER,
    agent_settings,
    control_site,
    running_agent,
)
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

GATEWAYS = ("ctl-au-0001", "ctl-au-0002", "ctl-au-0003")
PROFILE = ProfileRef(id="au-as4777-2020", region="au", version=1)
OPERATOR = "operator:e2e"
CHECK_S = 0.5  # the agents' drift check interval
VOLT_VAR_V = [92.0, 98.0, 102.0, 108.0]
VOLT_VAR_Q = [40.0, 0.0, 0.0, -40.0]


@dataclass
class Site:
    gateway_id: str
    sim: DeviceSite
    workdir: Path
    inverter: str = ""  # its local device id, once the config service learned it


def _query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def _provision(registry: RegistryService) -> None:
    """The sites' gateways in the registry (once: the cloud stack may start again)."""
    if registry.list_sites():
        return
    site = registry.add_site(SiteIn(name="control e2e", region="au", time_zone="Australia/Sydney"))
    for gateway_id in GATEWAYS:
        registry.add_gateway(GatewayIn(id=gateway_id, site_id=site.id))


@contextlib.asynccontextmanager
async def cloud_stack(
    database_url: str, mqtt_url: str, key_file: Path
) -> AsyncIterator[ConfigService]:
    """Ingest, the registry and the config service (with its loops) in this process."""
    await asyncio.to_thread(migrate, database_url)
    ingest = IngestSettings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_client_id=f"ctl-e2e-ingest-{os.getpid()}",
    )
    config = ConfigSettings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        signing_key_file=key_file,
        config_provision_new=False,  # the test's own first config is v1
        command_expiry_grace_s=1.0,
        config_republish_interval_s=0.3,
    )
    pool = await asyncio.to_thread(create_pool, database_url, min_size=1, max_size=12, name="e2e")
    try:
        registry = RegistryService(pool)
        await asyncio.to_thread(_provision, registry)
        async with run_services(pool, registry, ingest=ingest, config=config) as services:
            assert services.publisher_connected
            yield services.config
    finally:
        await asyncio.to_thread(pool.close)


def _known_inverter(database_url: str, gateway_id: str) -> str:
    rows = _query(
        database_url,
        "SELECT device FROM config.devices WHERE gateway_id = %s AND profile = %s",
        gateway_id,
        "sim-der-inverter",
    )
    return rows[0][0] if rows else ""


def _device_status(service: ConfigService, gateway_id: str, device: str) -> tuple[str, int | None]:
    view = service.show_config(gateway_id)
    state = next((d for d in view.devices if d.device == device), None)
    return ("", None) if state is None else (state.status, state.version)


async def _device_reaches(
    service: ConfigService, site: Site, status: str, version: int, within: float = 20.0
) -> None:
    await until(
        lambda: _device_status(service, site.gateway_id, site.inverter) == (status, version),
        within,
        f"{site.gateway_id} {site.inverter} {status} at version {version}",
    )


def _limit(site: Site) -> Any:
    return site.sim.point(INVERTER, "704.WMaxLimPct")


def _config(limit_pct: float, inverter: str, *, curve: bool = False) -> dict[str, Any]:
    settings: dict[str, Any] = {"power_limit_pct": limit_pct, "power_limit_enable": 1}
    if curve:
        settings |= {
            "volt_var_v_pct": VOLT_VAR_V,
            "volt_var_q_pct": VOLT_VAR_Q,
            "volt_var_enable": 1,
        }
    return {inverter: settings}


def _stored_limit(database_url: str, device: str) -> float | None:
    rows = _query(
        database_url,
        "SELECT r.value FROM telemetry.readings r"
        " JOIN telemetry.metrics m ON m.id = r.metric_id"
        " JOIN registry.devices d ON d.id = r.device_id"
        " WHERE m.name = 'pv_limit_pct' AND d.local_id = %s ORDER BY r.ts DESC LIMIT 1",
        device,
    )
    return rows[0][0] if rows else None


def _stored_limit_is(database_url: str, device: str, pct: float) -> bool:
    value = _stored_limit(database_url, device)
    return value is not None and abs(value - pct) < 1e-6


def _config_events(database_url: str) -> list[tuple[str, str]]:
    return [
        (name, payload.get("gateway_id", ""))
        for name, payload in _query(
            database_url, "SELECT name, payload FROM config.outbox ORDER BY id"
        )
    ]


async def _command_status(service: ConfigService, command_id: Any) -> str:
    command = await asyncio.to_thread(service.get_command, command_id)
    return "" if command is None else command.status


async def test_configs_commands_rollback_drift_and_offline_commands(
    database_url: str, mosquitto_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "cloud-signing.pem"
    write_key_file(key_file)
    trusted = [public_key_path(key_file)]
    sites: list[Site] = []
    async with contextlib.AsyncExitStack() as stack:
        service = await stack.enter_async_context(
            cloud_stack(database_url, mosquitto_url, key_file)
        )
        for gateway_id in GATEWAYS:
            sim = await stack.enter_async_context(control_site(gateway_id))
            workdir = tmp_path / gateway_id
            workdir.mkdir()
            sites.append(Site(gateway_id, sim, workdir))
        agents: dict[str, contextlib.AsyncExitStack] = {}
        for site in sites:
            agents[site.gateway_id] = await _start_agent(
                stack, _settings(site, mosquitto_url, trusted)
            )

        # The config service learns each gateway's devices from its birth (via events).
        for site in sites:
            await until(
                functools.partial(_known_inverter, database_url, site.gateway_id),
                30,
                f"{site.gateway_id}'s inverter known to the config service",
            )
            site.inverter = _known_inverter(database_url, site.gateway_id)

        # 1. One config (a power limit and a volt-var curve) to three sites.
        for site in sites:
            desired = await asyncio.to_thread(
                service.set_config,
                site.gateway_id,
                ConfigIn(
                    profile=PROFILE,
                    devices=_config(60, site.inverter, curve=True),
                    reason="AS/NZS 4777.2 volt-var and export limit",
                ),
                OPERATOR,
            )
            assert desired.version == 1
        for site in sites:
            await _device_reaches(service, site, "applied", 1)
            assert _limit(site) == pytest.approx(60)
            assert site.sim.point(INVERTER, "705.Ena") == 1
            active = [site.sim.point(INVERTER, f"705.Crv[0].Pt[{i}].V") for i in range(4)]
            assert active == pytest.approx(VOLT_VAR_V)
            q = [site.sim.point(INVERTER, f"705.Crv[0].Pt[{i}].Var") for i in range(4)]
            assert q == pytest.approx(VOLT_VAR_Q)
        for site in sites:  # … and the new limit is in the stored telemetry
            await until(
                functools.partial(_stored_limit_is, database_url, site.inverter, 60.0),
                20,
                f"{site.gateway_id}'s telemetry showing the 60 % limit",
            )

        # 2. A write failing on one site restores that device's previous values.
        failing = sites[1]
        failing.sim.activate_fault(
            {"kind": "write_fail", "unit": INVERTER, "point": "704.WMaxLimPct", "code": 4}
        )
        writes_before = len(failing.sim.writes(INVERTER))
        for site in sites:
            await asyncio.to_thread(
                service.set_config,
                site.gateway_id,
                ConfigIn(
                    profile=PROFILE, devices=_config(40, site.inverter), reason="tighter limit"
                ),
                OPERATOR,
            )
        for site in sites:
            expected = "failed" if site is failing else "applied"
            await _device_reaches(service, site, expected, 2)
        assert [_limit(s) for s in sites] == pytest.approx([40, 60, 40])
        assert len(failing.sim.writes(INVERTER)) > writes_before  # it was really tried
        view = await asyncio.to_thread(service.show_config, failing.gateway_id)
        failed = next(d for d in view.devices if d.device == failing.inverter)
        assert "power_limit_pct" in failed.detail or "WMaxLimPct" in failed.detail
        assert view.reported is not None
        assert view.reported.status == "failed"

        # 3. Rollback: a new version carrying version 1's settings, on every site.
        failing.sim.clear_faults("write_fail", INVERTER)
        for site in sites:
            rolled = await asyncio.to_thread(
                service.rollback,
                site.gateway_id,
                RollbackIn(to_version=1, reason="undo the tighter limit"),
                OPERATOR,
            )
            assert rolled.version == 3
            assert rolled.rollback_of == 1
        for site in sites:
            await _device_reaches(service, site, "applied", 3)
        assert [_limit(s) for s in sites] == pytest.approx([60, 60, 60])

        # 4. Drift: a limit changed on the device itself, behind the agent's back.
        drifting = sites[2]
        drifting.sim.set_point(INVERTER, "704.WMaxLimPct", 85)
        await _device_reaches(service, drifting, "drifted", 3, within=CHECK_S + 10)
        await until(
            lambda: ("config.drifted", drifting.gateway_id) in _config_events(database_url),
            10,
            "config.drifted emitted",
        )
        assert _limit(drifting) == pytest.approx(85)  # reported, not silently overwritten

        # 5. Commands while the gateway is offline: one within its expiry, one past it.
        offline = sites[0]
        # Stop the agent cleanly; its MQTT session (and subscriptions) stay at the broker.
        await agents[offline.gateway_id].aclose()
        within_expiry = await asyncio.to_thread(
            service.send_command,
            offline.gateway_id,
            CommandIn(
                name="set_power_limit",
                device=offline.inverter,
                args={"pct": 55},
                expires_in_s=120,
                reason="evening export limit",
            ),
            OPERATOR,
        )
        past_expiry = await asyncio.to_thread(
            service.send_command,
            offline.gateway_id,
            CommandIn(
                name="set_power_limit",
                device=offline.inverter,
                args={"pct": 30},
                expires_in_s=1,
                reason="a limit that must not arrive late",
            ),
            OPERATOR,
        )
        # The cloud gives up on the short one by itself: expired, nothing written.
        await until(lambda: _status_is(service, past_expiry.id, "expired"), 15, "cloud expiry")
        assert await _command_status(service, within_expiry.id) == "pending"
        assert _limit(offline) == pytest.approx(60)

        # Back online: the queued commands arrive through the persistent session.
        await _start_agent(stack, _settings(offline, mosquitto_url, trusted))
        await until(lambda: _status_is(service, within_expiry.id, "done"), 20, "command done")
        assert _limit(offline) == pytest.approx(55)
        # The late one is refused by the agent as expired; the cloud keeps it expired.
        await until(
            lambda: _acked(database_url, past_expiry.id, "expired"),
            20,
            "the agent's own expired ack",
        )
        assert await _command_status(service, past_expiry.id) == "expired"
        assert _limit(offline) == pytest.approx(55)
        assert not any(
            rec.points.get("704.WMaxLimPct") == pytest.approx(30)
            for rec in offline.sim.writes(INVERTER)
        )

        # 6. A config for a sleeping inverter (TCP refused at night) waits: the cloud
        # sees it pending, not failed; on wake the agent applies it, the cloud applied.
        sleeper = sites[1]
        events_before = _config_events(database_url)
        applied_before = events_before.count(("config.applied", sleeper.gateway_id))
        failed_before = events_before.count(("config.failed", sleeper.gateway_id))
        await sleeper.sim.endpoint.sleep()
        await asyncio.to_thread(
            service.set_config,
            sleeper.gateway_id,
            ConfigIn(profile=PROFILE, devices=_config(50, sleeper.inverter), reason="night"),
            OPERATOR,
        )
        await until(
            lambda: (
                _reported(database_url, sleeper.gateway_id, sleeper.inverter)
                == (4, "pending", "pending")
            ),
            15,
            "version 4 reported pending",
        )
        assert _limit(sleeper) == pytest.approx(60)
        await sleeper.sim.endpoint.wake()
        await _device_reaches(service, sleeper, "applied", 4)
        assert _limit(sleeper) == pytest.approx(50)
        await until(
            lambda: (
                _config_events(database_url).count(("config.applied", sleeper.gateway_id))
                > applied_before
            ),
            10,
            "config.applied emitted after the wake",
        )
        failed_after = _config_events(database_url).count(("config.failed", sleeper.gateway_id))
        assert failed_after == failed_before  # never reported failed on the way


def _reported(database_url: str, gateway_id: str, device: str) -> tuple[Any, ...]:
    """(version, gateway status, device status) the cloud keeps from the last report."""
    rows = _query(
        database_url,
        "SELECT r.version, r.status, d.status FROM config.reported r"
        " JOIN config.device_state d USING (gateway_id) WHERE gateway_id = %s AND d.device = %s",
        gateway_id,
        device,
    )
    return rows[0] if rows else ()


async def _status_is(service: ConfigService, command_id: Any, status: str) -> bool:
    return await _command_status(service, command_id) == status


def _acked(database_url: str, command_id: Any, status: str) -> bool:
    rows = _query(
        database_url,
        "SELECT 1 FROM ingest.cmd_acks WHERE command_id = %s AND status = %s",
        command_id,
        status,
    )
    return bool(rows)


def _settings(site: Site, mqtt_url: str, trusted: list[Path]) -> AgentSettings:
    return agent_settings(
        mqtt_url,
        site.sim,
        site.workdir,
        site.gateway_id,
        trusted,
        config_check_interval_s=CHECK_S,
        stored_timeout_s=3.0,
        unreachable_backoff_max_s=1.0,
    )


async def _start_agent(
    stack: contextlib.AsyncExitStack, settings: AgentSettings
) -> contextlib.AsyncExitStack:
    """The agent in its own exit stack (to stop one alone), closed with ``stack`` too."""
    own = contextlib.AsyncExitStack()
    await own.enter_async_context(running_agent(settings))
    stack.push_async_callback(own.aclose)
    return own


async def _command(
    service: ConfigService, site: Site, name: str, args: dict[str, Any], reason: str
) -> tuple[str, str]:
    """Send a command and wait for its final status: (status, detail)."""
    command = await asyncio.to_thread(
        service.send_command,
        site.gateway_id,
        CommandIn(name=name, device=site.inverter, args=args, expires_in_s=60, reason=reason),
        OPERATOR,
    )
    await until(lambda: _final(service, command.id), 20, f"final status of {name} ({reason})")
    final = await asyncio.to_thread(service.get_command, command.id)
    assert final is not None
    return final.status, final.detail


async def _final(service: ConfigService, command_id: Any) -> bool:
    return await _command_status(service, command_id) not in ("", "pending", "accepted")


def _last_kid(database_url: str) -> str:
    """The key id the newest command was signed with."""
    rows = _query(
        database_url,
        "SELECT document->>'kid' FROM config.commands ORDER BY issued_at DESC LIMIT 1",
    )
    return str(rows[0][0])


async def test_signing_key_rotation_without_a_flag_day(
    database_url: str, mosquitto_url: str, tmp_path: Path
) -> None:
    """Add the new key to the gateway, switch the cloud's key, retire the old one: no
    command is refused on the way, and after retirement the old key is refused."""
    old_file, new_file = tmp_path / "old.pem", tmp_path / "new.pem"
    old_kid, new_kid = write_key_file(old_file).kid, write_key_file(new_file).kid
    old_pub, new_pub = public_key_path(old_file), public_key_path(new_file)
    async with contextlib.AsyncExitStack() as stack:
        sim = await stack.enter_async_context(control_site(GATEWAYS[0]))
        site = Site(GATEWAYS[0], sim, tmp_path / "gw")
        site.workdir.mkdir()

        async def phase(key_file: Path, trusted: list[Path], pct: int) -> tuple[str, str]:
            async with contextlib.AsyncExitStack() as inner:
                service = await inner.enter_async_context(
                    cloud_stack(database_url, mosquitto_url, key_file)
                )
                await _start_agent(inner, _settings(site, mosquitto_url, trusted))
                await until(
                    functools.partial(_known_inverter, database_url, site.gateway_id),
                    30,
                    "the inverter known to the config service",
                )
                site.inverter = _known_inverter(database_url, site.gateway_id)
                status, detail = await _command(
                    service, site, "set_power_limit", {"pct": pct}, f"rotation {pct}"
                )
                return status, detail

        # Before: the old key signs, the gateway trusts it.
        assert (await phase(old_file, [old_pub], 70))[0] == "done"
        assert _last_kid(database_url) == old_kid
        # 1. The gateway trusts both; the cloud still signs with the old key.
        assert (await phase(old_file, [old_pub, new_pub], 65))[0] == "done"
        # 2. The cloud switches to the new key; the gateway accepts it.
        assert (await phase(new_file, [old_pub, new_pub], 60))[0] == "done"
        assert _last_kid(database_url) == new_kid
        assert _limit(site) == pytest.approx(60)
        # 3. The old key is retired from the gateway: what it signs is refused, unwritten.
        status, detail = await phase(old_file, [new_pub], 20)
        assert status == "rejected"
        assert detail.startswith("untrusted key")
        assert _limit(site) == pytest.approx(60)
        assert (await phase(new_file, [new_pub], 55))[0] == "done"
        assert _limit(site) == pytest.approx(55)
