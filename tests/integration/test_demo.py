"""The demo on embedded defaults: private PostgreSQL, amqtt, three sites, agents, ingest, API."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console

from potr.demo import run_demo

pytestmark = pytest.mark.integration


async def test_demo_on_embedded_defaults_stores_growing_counts_for_every_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("POTR_DATABASE_URL", "POTR_MQTT_URL"):
        monkeypatch.delenv(var, raising=False)
    out = io.StringIO()
    async with asyncio.timeout(90):
        reports = await run_demo(
            asyncio.Event(),
            duration_s=9,
            broker="amqtt",
            console=Console(file=out, width=200),
            report_every_s=3,
        )
    text = out.getvalue()
    assert "API http://127.0.0.1:" in text
    assert "token" in text
    assert len(reports) >= 2
    for region in ("au", "us", "es"):
        assert reports[-1].get(region, 0) > reports[0].get(region, 0) > 0, (region, reports)
