"""The in-process bus: routing, at-least-once per subscription, retries, dead letters,
back-pressure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cloud.events.bus import (
    BusUnavailableError,
    InProcessBus,
    PoisonEventError,
    RetryPolicy,
    Subscription,
    pattern_matches,
)
from cloud.events.outbox import Event

FAST = RetryPolicy(max_attempts=3, first_delay_s=0.001, max_delay_s=0.01)


def _event(name: str = "gateway.birth", source: str = "ingest", region: str = "au") -> Event:
    return Event.model_validate({"name": name, "region": region, "source": source})


@pytest.fixture
async def bus() -> AsyncIterator[InProcessBus]:
    async with InProcessBus(queue_max=4) as b:
        yield b


@pytest.mark.parametrize(
    ("pattern", "key", "hit"),
    [
        ("*.ingest.gateway.birth", "au.ingest.gateway.birth", True),
        ("*.ingest.gateway.birth", "au.registry.gateway.birth", False),
        ("#.gateway.birth", "es.ingest.gateway.birth", True),
        ("#", "au.ingest.device.offline", True),
        ("au.#", "au.ingest.device.offline", True),
        ("au.#", "us.ingest.device.offline", False),
        ("*.ingest.#", "au.ingest", True),
        ("*.ingest.*", "au.ingest.device.offline", False),
        ("*.*.device.*", "au.ingest.device.online", True),
        ("au.ingest.#.offline", "au.ingest.device.offline", True),
        ("au.ingest.#.offline", "au.ingest.offline", True),
    ],
)
def test_routing_patterns_match_like_amqp_topics(pattern: str, key: str, hit: bool) -> None:
    assert pattern_matches(pattern, key) is hit


async def test_every_subscription_gets_every_matching_event_before_publish_returns(
    bus: InProcessBus,
) -> None:
    seen: dict[str, list[Event]] = {"registry": [], "reports": [], "alerts": []}

    def collect(name: str) -> Subscription:
        async def handler(event: Event) -> None:
            seen[name].append(event)

        pattern = {"registry": "*.ingest.gateway.birth", "reports": "#", "alerts": "#.offline"}
        return Subscription(name, pattern[name], handler)

    for name in seen:
        await bus.subscribe(collect(name))
    birth, offline = _event(), _event("device.offline")
    await bus.publish([birth, offline])
    assert seen == {"registry": [birth], "reports": [birth, offline], "alerts": [offline]}


async def test_subscribers_sharing_a_consumer_name_share_its_events(bus: InProcessBus) -> None:
    handled: list[tuple[int, Event]] = []

    def worker(n: int) -> Subscription:
        async def handler(event: Event) -> None:
            handled.append((n, event))
            await asyncio.sleep(0)

        return Subscription("registry", "#", handler)

    await bus.subscribe(worker(1))
    await bus.subscribe(worker(2))
    events = [_event() for _ in range(20)]
    await bus.publish(events)
    assert sorted(e.id for _, e in handled) == sorted(e.id for e in events)


async def test_a_failing_handler_is_retried_until_it_succeeds(bus: InProcessBus) -> None:
    calls: list[Event] = []

    async def flaky(event: Event) -> None:
        calls.append(event)
        if len(calls) < 3:
            raise RuntimeError("not yet")

    await bus.subscribe(Subscription("registry", "#", flaky, FAST))
    await bus.publish([_event()])
    assert len(calls) == 3
    assert bus.dead_letters == []


async def test_a_handler_failing_every_attempt_dead_letters_the_event(bus: InProcessBus) -> None:
    async def broken(event: Event) -> None:
        raise RuntimeError("always")

    await bus.subscribe(Subscription("registry", "#", broken, FAST))
    event = _event()
    await bus.publish([event])
    [dead] = bus.dead_letters
    assert (dead.consumer, dead.event) == ("registry", event)
    assert "failed 3 times" in dead.reason


async def test_a_poison_event_is_dead_lettered_without_retries(bus: InProcessBus) -> None:
    calls: list[Event] = []

    async def refuses(event: Event) -> None:
        calls.append(event)
        raise PoisonEventError("unknown gateway")

    await bus.subscribe(Subscription("registry", "#", refuses, FAST))
    await bus.publish([_event()])
    assert len(calls) == 1
    assert bus.dead_letters[0].reason == "poison: unknown gateway"


async def test_a_stuck_consumer_makes_publish_time_out_not_hang(bus: InProcessBus) -> None:
    release = asyncio.Event()

    async def stuck(event: Event) -> None:
        await release.wait()

    await bus.subscribe(Subscription("registry", "#", stuck))
    with pytest.raises(BusUnavailableError):
        await bus.publish([_event() for _ in range(10)], timeout_s=0.2)
    release.set()


async def test_publish_on_a_closed_bus_is_refused() -> None:
    bus = InProcessBus()
    with pytest.raises(BusUnavailableError):
        await bus.publish([_event()])
