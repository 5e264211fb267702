"""``potr services`` as a region's deployment runs it: a process of its own beside
``potr ingest`` and ``potr config run``, meeting them on RabbitMQ.

A customer account the customers service creates here (in the test's process) reaches
notify's recipients through the customers outbox, which the services process relays to
RabbitMQ and consumes from there (notify's accounts consumer); then SIGTERM ends the
process cleanly. Its log says which consumers it runs: the background services', none
of ingest's, the registry's or the config service's (their processes run those).
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.customers import AccountIn, CustomersService
from cloud.events.amqp import RabbitBus
from cloud.events.bus import Subscription
from cloud.events.outbox import Event
from cloud.migrate import migrate
from contracts.topics import Region
from tests.waiting import until_sync

pytestmark = pytest.mark.integration
Pool = ConnectionPool[Connection[Any]]

#: Bounds: the process's start (imports, RabbitMQ's queues) and its stop on SIGTERM.
EFFECT_WITHIN_S = 30.0
STOP_WITHIN_S = 15.0


@pytest.fixture
def pool(database_url: str) -> Iterator[Pool]:
    migrate(database_url)
    pool = create_pool(database_url, max_size=2, name="services-process-test")
    try:
        yield pool
    finally:
        pool.close()


def _account_row(pool: Pool, account_id: str) -> tuple[Any, ...] | None:
    with pool.connection() as conn:
        return conn.execute(
            "SELECT account_id, region, name, email FROM notify.accounts WHERE account_id = %s",
            (account_id,),
        ).fetchone()


def _consumers(log: str) -> list[str]:
    """The consumer names of the process's ``events: ...`` log line."""
    found = re.search(r"events: RabbitBus bus, relays \[.*?\], consumers (\[.*?\])", log)
    assert found, f"no events line in the log:\n{log}"
    names = ast.literal_eval(found.group(1))
    assert isinstance(names, list)
    return [str(n) for n in names]


async def _delete_topology(url: str, tag: str, consumers: list[str]) -> None:
    """Delete the queues and exchanges the process declared (the broker is shared)."""

    async def ignore(_: Event) -> None:
        return None

    bus = RabbitBus(url, exchange=f"test.{tag}.events", queue_prefix=f"test.{tag}.")
    for name in consumers:
        await bus.subscribe(Subscription(name, "none.none.none", ignore))
    await bus.start()
    try:
        await bus.wait_connected(10)
        await bus.delete_topology()
    finally:
        await bus.close()


def test_potr_services_relays_and_consumes_on_rabbitmq_and_stops_on_sigterm(
    pool: Pool, database_url: str, rabbitmq_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "POTR_ENV": "test",
        "POTR_DATABASE_URL": database_url,
        "POTR_AMQP_URL": rabbitmq_url,
        "POTR_BUS_EXCHANGE": f"test.{tag}.events",
        "POTR_BUS_QUEUE_PREFIX": f"test.{tag}.",
        "POTR_OUTBOX_POLL_MS": "50",
    }
    env.pop("POTR_SAP_BASE_URL", None)  # SAP off: no SAP system here
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "potr", "services"], env=env, stdout=out, stderr=err
        )
    code: int | None = None
    try:
        account = CustomersService(pool).add_account(
            Region.ES, AccountIn(name="Comunidad Calle Mayor 7", email="cm7@example.es")
        )

        def told() -> tuple[Any, ...] | None:
            if proc.poll() is not None:
                pytest.fail(f"potr services exited {proc.returncode}: {err_path.read_text()}")
            return _account_row(pool, account.id)

        until_sync(told, EFFECT_WITHIN_S, "notify's record of the new account", poll_s=0.1)
        row = _account_row(pool, account.id)
        assert row == (account.id, "es", "Comunidad Calle Mayor 7", "cm7@example.es")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(STOP_WITHIN_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_WITHIN_S)
        log = out_path.read_text() + err_path.read_text()
        if "events: RabbitBus bus" in log:
            asyncio.run(_delete_topology(rabbitmq_url, tag, _consumers(log)))
    assert code == 0, log
    assert "services stopped" in log
    assert "SAP off (no POTR_SAP_BASE_URL)" in log
    assert "Traceback" not in log
    services = {name.split(".")[0] for name in _consumers(log)}
    # The background services' consumers; ingest's, its store's, the registry's and the
    # config service's are `potr ingest`'s and `potr config run`'s.
    assert services == {"alerts", "notify", "dispatch", "billing", "support", "customers"}
    assert rabbitmq_url not in log  # the URL carries the broker's password


def test_potr_services_refuses_production_without_rabbitmq(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from potr.cli import app

    for name in list(os.environ):
        if name.startswith("POTR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("POTR_ENV", "production")
    result = CliRunner().invoke(app, ["services"])
    assert result.exit_code == 2, result.output
    assert "no POTR_AMQP_URL" in result.output
    assert "refused with POTR_ENV=production" in result.output
