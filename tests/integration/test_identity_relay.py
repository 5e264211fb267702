"""The identity service's events reach each region's own bus (ARCHITECTURE decision 152).

Identity is one global service over its own database; each region has its own RabbitMQ.
:func:`cloud.events.runtime.region_relays` relays identity's one outbox with a relay per
region: here two buses on the local broker under exchange names of their own stand for
the AU and ES brokers. A region whose broker is unreachable keeps its events pending
while the other region's flow, and gets them once its bus is back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.events.amqp import RabbitBus
from cloud.events.bus import Subscription
from cloud.events.outbox import Event
from cloud.events.runtime import BusSettings, region_relays
from cloud.identity import (
    IdentityService,
    IdentitySettings,
    Role,
    UserIn,
    create_identity_service,
)
from cloud.keyfiles import write_key_file
from potr.servers.ports import free_port
from tests.integration.api_world import migrated_database
from tests.waiting import until

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]


@pytest.fixture
def pool(postgres_server_url: str) -> Iterator[Pool]:
    with migrated_database(postgres_server_url, "identity") as url:
        pool = create_pool(url, max_size=6, name="test-identity-relay")
        try:
            yield pool
        finally:
            pool.close()


@pytest.fixture
def identity(pool: Pool, tmp_path: Path) -> IdentityService:
    key_file = tmp_path / "identity.pem"
    write_key_file(key_file)
    settings = IdentitySettings(
        env="test",
        identity_signing_key_file=key_file,
        identity_pin_pepper="test-pepper-" + "x" * 32,
    )
    return create_identity_service(settings, pool)


class RegionBroker:
    """One region's broker as its services see it: a bus with a consumer of everything."""

    def __init__(self, url: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.exchange = f"test.{tag}.events"
        self.prefix = f"test.{tag}."
        self.url = url
        self.consumer = RabbitBus(url, exchange=self.exchange, queue_prefix=self.prefix)
        self.got: list[Event] = []
        self.arrived = asyncio.Event()

    async def _on(self, event: Event) -> None:
        self.got.append(event)
        self.arrived.set()

    async def start(self) -> None:
        await self.consumer.subscribe(Subscription("notify", "#", self._on))
        await self.consumer.start()
        await self.consumer.wait_connected(5.0)

    def publisher(self) -> RabbitBus:
        """What the identity process publishes this region's events through."""
        return RabbitBus(self.url, exchange=self.exchange, queue_prefix=self.prefix)

    async def close(self) -> None:
        if self.consumer.connected:
            await self.consumer.delete_topology()
        await self.consumer.close()


@pytest.fixture
async def regions(rabbitmq_url: str) -> AsyncIterator[dict[str, RegionBroker]]:
    both = {"au": RegionBroker(rabbitmq_url), "es": RegionBroker(rabbitmq_url)}
    try:
        for region in both.values():
            await region.start()
        yield both
    finally:
        for region in both.values():
            await region.close()


def _add(identity: IdentityService, region: str) -> str:
    n = uuid.uuid4().hex[:10]
    created = identity.create_user(
        UserIn(
            email=f"op{n}@potr.example",
            display_name=f"Operator {n}",
            role=Role.OPERATOR,
            home_region=region,
        )
    )
    return created.id


def _outbox(pool: Pool, region: str, *, pending: bool = False) -> set[uuid.UUID]:
    """The event ids of ``region``'s rows in identity's outbox (only unpublished ones)."""
    where = " AND published_at IS NULL" if pending else ""
    with pool.connection() as conn:
        rows = conn.execute(
            f"SELECT event_id FROM identity.outbox WHERE region = %s{where}", (region,)
        ).fetchall()
    return {r[0] for r in rows}


async def test_each_users_events_reach_only_their_regions_bus_and_wait_for_it(
    pool: Pool, identity: IdentityService, regions: dict[str, RegionBroker]
) -> None:
    au_user = _add(identity, "au")
    es_user = _add(identity, "es")
    au_events, es_events = _outbox(pool, "au"), _outbox(pool, "es")
    # Each creation is told at least as user.created, in the user's home region.
    assert au_events
    assert es_events
    assert not au_events & es_events

    settings = BusSettings(outbox_poll_ms=50)
    # ES's broker is down: nothing listens on that port.
    down = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    au, es = regions["au"], regions["es"]
    async with region_relays(settings, pool, "identity", {"au": au.publisher(), "es": down}):
        await until(lambda: len(au.got), 5.0, "AU's events on AU's bus", at_least=len(au_events))
        assert {e.id for e in au.got} == au_events
        assert {e.payload["user_id"] for e in au.got} == {au_user}
        assert any(e.name == "user.created" for e in au.got)
        # AU's flowed; ES's all wait for their broker, none lost, none sent elsewhere.
        assert _outbox(pool, "au", pending=True) == set()
        assert _outbox(pool, "es", pending=True) == es_events
    assert es.got == []

    async with region_relays(settings, pool, "identity", {"es": es.publisher()}):
        await until(lambda: len(es.got), 5.0, "ES's events on ES's bus", at_least=len(es_events))
        assert {e.id for e in es.got} == es_events
        assert {e.payload["user_id"] for e in es.got} == {es_user}
        await until(lambda: not _outbox(pool, "es", pending=True), 5.0, "ES's rows marked")
    assert {e.id for e in au.got} == au_events  # nothing of ES's reached AU
