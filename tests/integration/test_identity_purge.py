"""``potr identity-api`` purges what nobody can use any more while it serves: a throttle
counter whose window ended more than a day ago disappears within a purge interval, a
current one stays, and each purge logs how many rows it removed. It also relays
identity's events to the buses of POTR_IDENTITY_REGION_BUSES (here AU's only): an AU
user's event is published, an ES user's waits for a bus ES does not have."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cloud.adapters.postgres import connect
from cloud.events.amqp import RabbitBus
from cloud.events.outbox import emit
from cloud.events.users import USER_CREATED, UserChanged, user_event
from cloud.identity import repository as repo
from cloud.keyfiles import write_key_file
from cloud.migrate import migrate
from potr.servers.ports import free_port
from tests.waiting import until_sync

pytestmark = pytest.mark.integration

FIRST_PURGE = "identity purge: removed 0 expired row(s)"


def _throttle_keys(database_url: str) -> set[str]:
    with connect(database_url) as conn:
        return {row[0] for row in conn.execute("SELECT key FROM identity.throttle")}


@pytest.fixture
def identity_process(
    database_url: str, tmp_path: Path, rabbitmq_url: str
) -> Iterator[tuple[str, Path]]:
    """``potr identity-api`` over a migrated database, purging every second and relaying
    AU's events to a bus of its own on the test broker: its URL and its log file."""
    migrate(database_url)
    tag = uuid.uuid4().hex[:8]
    key_file = tmp_path / "identity.pem"
    write_key_file(key_file)
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("POTR_")}
    env |= {
        "POTR_ENV": "test",
        "POTR_DATABASE_URL": database_url,
        "POTR_IDENTITY_SIGNING_KEY_FILE": str(key_file),
        "POTR_IDENTITY_PIN_PEPPER": "test-pepper-" + "x" * 32,
        "POTR_IDENTITY_API_PORT": str(port),
        "POTR_IDENTITY_PURGE_INTERVAL_S": "1",
        "POTR_IDENTITY_REGION_BUSES": json.dumps({"au": rabbitmq_url}),
        "POTR_BUS_EXCHANGE": f"test.{tag}.events",
        "POTR_BUS_QUEUE_PREFIX": f"test.{tag}.",
        "POTR_OUTBOX_POLL_MS": "50",
    }
    log = tmp_path / "identity-api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "potr", "identity-api"], env=env, stdout=out, stderr=out
        )
    try:

        def started() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"potr identity-api exited {proc.returncode}: {log.read_text()}")
            return FIRST_PURGE in log.read_text() and "Uvicorn running" in log.read_text()

        until_sync(started, 30, "potr identity-api serving, its first purge done")
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
        asyncio.run(_delete_bus(rabbitmq_url, tag))


async def _delete_bus(url: str, tag: str) -> None:
    """Remove what the process's AU bus declared on the shared broker."""
    async with RabbitBus(url, exchange=f"test.{tag}.events", queue_prefix=f"test.{tag}.") as bus:
        await bus.wait_connected(10)
        await bus.delete_topology()


def _pending(database_url: str) -> dict[str, bool]:
    """Each outbox row's user id → whether it still waits to be published."""
    with connect(database_url) as conn:
        rows = conn.execute("SELECT payload->>'user_id', published_at IS NULL FROM identity.outbox")
        return {r[0]: r[1] for r in rows}


def test_identity_api_purges_counters_that_ended_over_a_day_ago_while_it_serves(
    identity_process: tuple[str, Path], database_url: str
) -> None:
    url, log = identity_process
    now = datetime.now(UTC)
    with connect(database_url) as conn:
        # As a failed login counts its identifier: one two days ago, one now.
        repo.lock_throttle(conn, "password", "old-identifier", now - timedelta(days=2))
        repo.lock_throttle(conn, "password", "current-identifier", now)
    assert _throttle_keys(database_url) == {"old-identifier", "current-identifier"}

    until_sync(
        lambda: "old-identifier" not in _throttle_keys(database_url),
        15,
        "the purge to delete the counter whose window ended two days ago",
    )
    assert _throttle_keys(database_url) == {"current-identifier"}
    until_sync(
        lambda: "identity purge: removed 1 expired row(s)" in log.read_text(),
        15,
        "the purge's log line naming the one row it removed",
    )
    # The server answered all along: the purge runs beside it, not instead of it.
    answer = httpx.get(f"{url}/api/v1/auth/users", timeout=10)
    assert answer.status_code == 401

    # The relay runs beside them too: AU's event reaches AU's bus (marked once it
    # confirmed), ES's has no bus here and waits.
    with connect(database_url) as conn:
        for user, region in (("u-au", "au"), ("u-es", "es")):
            change = UserChanged(user_id=user, role="operator", home_region=region)
            emit(conn, "identity", user_event(USER_CREATED, change))
        conn.commit()
    until_sync(
        lambda: _pending(database_url).get("u-au") is False, 15, "AU's event relayed to its bus"
    )
    assert _pending(database_url) == {"u-au": False, "u-es": True}
