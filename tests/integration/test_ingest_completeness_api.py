"""GET /api/v1/{region}/devices/{id}/completeness through the real API (uvicorn + httpx):
a scripted outage in the site's local day shows up as the stored/expected samples of that
day, and the route needs a token that reaches the device."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import create_api
from cloud.identity import Role
from cloud.ingest.pipeline import IngestPipeline
from cloud.registry import RegistryService
from contracts.signing import SigningKey
from contracts.timeutil import utc_now
from potr.servers.ports import free_port
from tests.api_tokens import api_settings, bearer
from tests.integration.test_cloud_ingest import _query, registry
from tests.integration.test_ingest_scale import _batch, _birth, _message, pipeline
from tests.waiting import until

pytestmark = pytest.mark.integration
__all__ = ["pipeline", "registry"]  # fixtures used here

SYDNEY = ZoneInfo("Australia/Sydney")
POLL_S = 60.0
#: Local minutes of the scripted outage: 10:00-12:00 and 18:30-18:45 (data dropped).
OUTAGES = (range(600, 720), range(1110, 1125))


class Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    def token(self, role: Role) -> dict[str, str]:
        return bearer(role, account_id="acc_" + "c" * 32 if role == Role.CUSTOMER else None)


@pytest.fixture
async def api(database_url: str, registry: RegistryService) -> AsyncIterator[Api]:
    pool = create_pool(database_url, max_size=4, name="test-api")
    settings = api_settings(database_url, api_port=free_port())
    app = create_api(settings, pool)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.api_port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, 10, "the API to listen")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api_port}") as client:
            yield Api(client)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        pool.close()


def _script_day(pipeline: IngestPipeline, day: date) -> list[datetime]:
    """One reading a minute over ``day`` (Sydney) except the outages, in 6 batches of a
    stream; returns the stamps sent."""
    stream = uuid.uuid4()
    pipeline.process([_message("birth", _birth(stream, poll_s=POLL_S, publish_s=300))])
    start = datetime.combine(day, datetime.min.time(), SYDNEY).astimezone(UTC)
    missing = {m for r in OUTAGES for m in r}
    sent = [start + timedelta(minutes=m) for m in range(1440) if m not in missing]
    for seq, i in enumerate(range(0, len(sent), 240), start=1):
        pipeline.process([_message("telemetry", _batch(stream, seq, sent[i : i + 240]))])
    return sent


async def test_completeness_route_matches_a_scripted_outage_and_needs_a_token(
    api: Api, pipeline: IngestPipeline, database_url: str
) -> None:
    day = (utc_now().astimezone(SYDNEY) - timedelta(days=3)).date()
    sent = await asyncio.to_thread(_script_day, pipeline, day)
    [(device_id,)] = _query(database_url, "SELECT device_id FROM ingest.device_keys")
    url = f"/api/v1/au/devices/{device_id}/completeness"
    params = {
        "from": (day - timedelta(days=1)).isoformat(),
        "to": (day + timedelta(days=1)).isoformat(),
    }

    # Authorisation: no token, a forged one: refused; another account's customer: not there.
    assert (await api.client.get(url, params=params)).status_code == 401
    forged = bearer(Role.OPERATOR, key=SigningKey.generate())  # a key the API does not trust
    resp = await api.client.get(url, params=params, headers=forged)
    assert resp.status_code == 401
    resp = await api.client.get(url, params=params, headers=api.token(Role.CUSTOMER))
    assert resp.status_code == 404

    resp = await api.client.get(url, params=params, headers=api.token(Role.SUPPORT))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["device_id"] == device_id
    assert body["time_zone"] == "Australia/Sydney"
    assert body["poll_interval_s"] == POLL_S
    before, target, after = body["days"]
    stored = len(sent)
    assert stored == 1440 - sum(len(r) for r in OUTAGES)
    assert target == {
        "day": day.isoformat(),
        "expected": 1440,
        "stored": stored,
        "percent": round(100 * stored / 1440, 2),
    }
    assert (before["day"], before["stored"], before["percent"]) == (
        (day - timedelta(days=1)).isoformat(),
        0,
        0.0,
    )
    assert (after["stored"], after["percent"]) == (0, 0.0)
    # The local day straddles two UTC dates: counting by UTC date would split it.
    utc_dates = {ts.date() for ts in sent}
    assert len(utc_dates) == 2

    # Bad requests: unknown device, reversed range.
    headers = api.token(Role.OPERATOR)
    missing = await api.client.get("/api/v1/au/devices/999999/completeness", headers=headers)
    assert missing.status_code == 404
    reversed_ = {"from": day.isoformat(), "to": (day - timedelta(days=1)).isoformat()}
    resp = await api.client.get(url, params=reversed_, headers=headers)
    assert resp.status_code == 422
