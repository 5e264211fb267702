"""The demo on embedded defaults: private PostgreSQL, a secure broker (Mosquitto with TLS,
or amqtt with passwords and the ACL), three sites, agents, ingest, the config service and
the API; the command it prints is sent and ends ``done``. Each site has PoTR's system
meter beside its grid meter, both named by its installation record, and the portal's
power flow is the grid meter's."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from rich.console import Console

import potr.demo
from cloud.customers import CustomersService
from cloud.portal.web.site_data import SiteData
from cloud.scope import GatewayReach
from cloud.telemetry import TelemetryReader
from contracts.topics import Region
from potr.demo import GRID_METER_UNIT, DemoStack, run_demo
from simulators.device_site import SYSTEM_METER_UNIT
from tests.waiting import until

pytestmark = pytest.mark.integration


async def _printed(out: io.StringIO, pattern: str, within_s: float) -> re.Match[str]:
    """The first line of the demo's output matching ``pattern`` (bounded wait)."""
    async with asyncio.timeout(within_s):
        # the console is a plain buffer: nothing to await
        while (match := re.search(pattern, out.getvalue(), re.MULTILINE)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return match


async def _send_the_printed_command(out: io.StringIO) -> dict[str, Any]:
    """Do what the demo tells the user: POST its command, follow it to a final status."""
    line = (await _printed(out, r"^command: curl .*$", 60)).group(0)
    argv = shlex.split(line.removeprefix("command: "))
    url, body = argv[argv.index("-d") - 1], json.loads(argv[argv.index("-d") + 1])
    token = (await _printed(out, r"^export TOKEN=(\S+)$", 5)).group(1)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:
        sent = await client.post(url, json=body)
        assert sent.status_code == 201, sent.text
        # /api/v1/<region>/gateways/<gw>/commands → /api/v1/<region>/commands/<id>
        command_url = f"{url.split('/gateways/')[0]}/commands/{sent.json()['id']}"
        async with asyncio.timeout(30):
            # a REST resource: polled, as a user would
            while (await client.get(command_url)).json()["status"] in ("pending", "accepted"):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            command = (await client.get(command_url)).json()
        refused = await client.post(url, json=body | {"args": {"pct": 150}})
    assert refused.status_code == 422
    assert refused.json()["detail"]["field"] == "args.pct"
    result: dict[str, Any] = command
    return result


#: What the demo says of its broker: secure by default (Mosquitto with TLS, passwords
#: and the rendered ACL, as on this machine), or amqtt with passwords and the ACL.
BROKERS = {
    "auto": "MQTT broker mqtts://127.0.0.1:\\d+ \\(TLS, per-gateway passwords and ACL\\)",
    "amqtt": "MQTT broker mqtt://127.0.0.1:\\d+ \\(amqtt, demo only: passwords and ACL, no TLS\\)",
}


async def _the_printed_people_see_what_is_theirs(out: io.StringIO) -> None:
    """Sign in as the printed AU customer and the MOSIE (PIN): the customer sees its own
    site and nothing of another region; the MOSIE signs in with employee number + PIN."""
    api = (await _printed(out, r"^API (http://127\.0\.0\.1:\d+)", 5)).group(1)
    line = await _printed(out, r"^  customer\s+au\s+(\S+)\s+(\S+)$", 5)
    staff = await _printed(out, r"^  mosie\s+au\s+\S+\s+\S+\s+employee (\S+) PIN (\d{6})$", 5)
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": line.group(1), "password": line.group(2)}
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        sites = await client.get("/api/v1/au/sites", headers=auth)
        assert sites.status_code == 200, sites.text
        assert [s["name"] for s in sites.json()] == ["Demo Sydney"]
        assert (await client.get("/api/v1/us/sites", headers=auth)).status_code == 404
        pin = await client.post(
            "/api/v1/auth/pin-login",
            json={"employee_no": staff.group(1), "pin": staff.group(2)},
        )
        assert pin.status_code == 200, pin.text


def _roles(stack: DemoStack, site_id: int) -> int:
    with stack.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry.site_meter_roles WHERE site_id = %s", (site_id,)
        ).fetchone()
    return int(row[0]) if row else 0


async def _the_au_flow_is_the_grid_meters(stack: DemoStack) -> None:
    """The AU site's record names its system meter (billing) and grid meter; the store has
    heard it; with the plant held still, the portal's flow shows the grid meter's power
    (the site's load less the PV: the demo has no battery) and the home the site's load,
    never grid + system."""
    site_id, sim = stack.sites["au"], stack.sims["au"]
    record = await asyncio.to_thread(
        CustomersService(stack.pool).get_installation, Region.AU, site_id
    )
    assert record is not None
    assert record.billing_meter == sim.device(SYSTEM_METER_UNIT).serial
    assert record.grid_meter == sim.device(GRID_METER_UNIT).serial
    await until(lambda: asyncio.to_thread(_roles, stack, site_id), 30, "roles", at_least=2)
    sim.pause_updates()
    try:
        mark, state = datetime.now(UTC), sim.state
        reader = TelemetryReader(stack.pool)

        async def polled_since_the_pause() -> bool:
            latest = await asyncio.to_thread(reader.site_latest, site_id, mark)
            metrics = [v.metric for v in latest.values] if latest else []
            return metrics.count("grid_w") == 2 and "pv_w" in metrics  # both meters

        await until(polled_since_the_pause, 20, "both meters and the inverter read again")
        site = stack.registry.get_site(site_id)
        assert site is not None
        data = SiteData(stack.registry, reader, device_states=lambda *_: {})
        flow = await asyncio.to_thread(data.flow, site, GatewayReach(), timedelta(minutes=1))
    finally:
        sim.resume_updates()
    assert flow.pv_w == pytest.approx(state.pv_w, abs=20)
    assert flow.grid_w == pytest.approx(state.load_w - state.pv_w, abs=20)
    assert flow.home_w == pytest.approx(state.load_w, abs=20)


@pytest.mark.parametrize("broker", list(BROKERS))
async def test_demo_on_embedded_defaults_stores_readings_and_obeys_its_command(
    monkeypatch: pytest.MonkeyPatch, broker: str
) -> None:
    for var in ("POTR_DATABASE_URL", "POTR_MQTT_URL"):
        monkeypatch.delenv(var, raising=False)
    stacks: list[DemoStack] = []  # the running demo's pieces, to look into
    started = potr.demo.demo_stack

    @asynccontextmanager
    async def kept(**kwargs: Any) -> AsyncIterator[DemoStack]:
        async with started(**kwargs) as stack:
            stacks.append(stack)
            yield stack

    monkeypatch.setattr(potr.demo, "demo_stack", kept)
    out = io.StringIO()
    stop = asyncio.Event()
    async with asyncio.timeout(150):
        demo = asyncio.create_task(
            run_demo(
                stop,
                duration_s=90,
                broker=broker,  # type: ignore[arg-type]
                console=Console(file=out, width=400),
                report_every_s=3,
            )
        )
        try:
            command = await _send_the_printed_command(out)
            await _the_printed_people_see_what_is_theirs(out)
            await _the_au_flow_is_the_grid_meters(stacks[0])
            await _printed(out, r"(?s)stored readings.*stored readings", 30)  # two reports
        finally:
            stop.set()
        reports = await demo
    assert command["status"] == "done", command
    assert command["detail"].startswith("read back 704.WMaxLimPct=50"), command
    text = out.getvalue()
    assert "API http://127.0.0.1:" in text
    assert re.search(BROKERS[broker], text), text[:2000]
    assert len(reports) >= 2
    for region in ("au", "us", "es"):
        assert reports[-1].get(region, 0) > reports[0].get(region, 0) > 0, (region, reports)
