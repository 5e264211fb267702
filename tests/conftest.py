"""Fixtures with real servers.

PostgreSQL: a fresh database per test on ``POTR_TEST_DATABASE_URL``, else the local server
on 127.0.0.1:5432 if it answers, else a private cluster this session starts. Mosquitto: a
private instance per test on a free port (``POTR_TEST_MQTT_URL`` to use another broker for
tests that never kill it). RabbitMQ: ``rabbitmq_url`` (shared, session) and
``private_rabbitmq`` (a private node per test, to kill). TimescaleDB: ``timescale_url``
(one PGlite with TimescaleDB for the session) and ``timescale_database_url`` (the same,
reset for one test). Fixtures stop what they start, by process id.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from potr.servers.amqtt_broker import EmbeddedAmqtt
from potr.servers.mosquitto import PrivateMosquitto
from potr.servers.pglite import PrivatePGlite, missing_install
from potr.servers.postgres import EmbeddedPostgres
from tests.faultproxy import FaultProxy


def _server_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server URL whose user may create databases."""
    given = os.environ.get("POTR_TEST_DATABASE_URL")
    if given:
        yield given
        return
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    if _server_answers(local):
        yield local
        return
    with EmbeddedPostgres(fsync=False) as pg:
        yield pg.url


def _with_dbname(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in info.items() if v is not None})


@pytest.fixture
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_dbname(postgres_server_url, name)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def mosquitto() -> Iterator[PrivateMosquitto]:
    """A private Mosquitto this test may kill and restart."""
    broker = PrivateMosquitto()
    broker.start()
    try:
        yield broker
    finally:
        broker.cleanup()


@pytest.fixture
def mosquitto_url(mosquitto: PrivateMosquitto) -> str:
    return os.environ.get("POTR_TEST_MQTT_URL") or mosquitto.url


@pytest.fixture
async def amqtt_url() -> AsyncIterator[str]:
    """The embedded demo broker (amqtt) in this test's event loop."""
    async with EmbeddedAmqtt() as broker:
        yield broker.url


@pytest.fixture
async def fault_proxy() -> AsyncIterator[Callable[[str, int], Awaitable[FaultProxy]]]:
    """``await fault_proxy(host, port)``: a :class:`tests.faultproxy.FaultProxy` in front of
    ``host:port`` (mode ``pass``), closed after the test."""
    proxies: list[FaultProxy] = []

    async def start(host: str, port: int) -> FaultProxy:
        proxy = await FaultProxy(host, port).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        await proxy.close()


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """A RabbitMQ for tests that never kill it: ``POTR_TEST_AMQP_URL``, else the machine's
    broker on 127.0.0.1:5672 (guest) if it answers, else a private node for the session.
    Tests isolate themselves with their own exchange and queue names."""
    from potr.servers.rabbitmq import PrivateRabbitMQ, amqp_ready

    given = os.environ.get("POTR_TEST_AMQP_URL")
    if given:
        yield given
        return
    if amqp_ready("127.0.0.1", 5672):
        yield "amqp://guest:guest@127.0.0.1:5672/"
        return
    with PrivateRabbitMQ() as node:
        yield node.url


@pytest.fixture
def private_rabbitmq() -> Iterator[Any]:
    """A private RabbitMQ node (free ports, own data) this test may SIGKILL and restart."""
    from potr.servers.rabbitmq import PrivateRabbitMQ

    node = PrivateRabbitMQ()
    node.start()
    try:
        yield node
    finally:
        node.cleanup()


@pytest.fixture(scope="session")
def pglite_server() -> Iterator[PrivatePGlite]:
    """The session's one PGlite with TimescaleDB (in memory). Missing Node or packages
    fail the tests that need it, never skip them: the TimescaleDB path is part of the
    test command (``scripts/bootstrap.sh test`` installs it)."""
    reason = missing_install()
    if reason is not None:
        pytest.fail(f"the TimescaleDB tests need PGlite: {reason}", pytrace=False)
    with PrivatePGlite() as server:
        yield server


@pytest.fixture(scope="session")
def timescale_url(pglite_server: PrivatePGlite) -> str:
    """A libpq URL of a TimescaleDB (2.23, PostgreSQL 17.5): one PGlite for the session.

    Connection rules (``potr.servers.pglite.CLIENT_RULES``): the URL carries
    ``sslmode=disable`` and a user with a password; every connection shares ONE
    single-user session, so use one autocommit connection at a time (or a pool of
    size 1) with ``prepare_threshold=None``; no ``COPY FROM STDIN`` (multi-row
    ``INSERT``); ``options='-c ...'`` is ignored (``SET`` after connecting); policies
    never run by themselves: ``CALL run_job(<id>)``; retention counts from ``now()``.

    Isolation: there is one database, so this URL alone gives none. Tests take
    ``timescale_database_url`` (reset before each test); a module-scoped fixture that
    builds once on this URL owns what it creates, and the next
    ``timescale_database_url`` drops it.
    """
    return pglite_server.url


@pytest.fixture
def timescale_database_url(pglite_server: PrivatePGlite) -> str:
    """``timescale_url`` returned to its state at the session's start for one test:
    every schema created since dropped (with its hypertables, continuous aggregates and
    policies), new relations in ``public`` dropped, added jobs deleted, the session's
    settings, prepared statements and temporary tables discarded. Reset before the
    test, not after, so whatever an earlier test left (even a failed one) is gone; the
    test must close its connections before it ends."""
    pglite_server.reset()
    return pglite_server.url
