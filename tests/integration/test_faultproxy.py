"""The test utility itself: each mode of the fault proxy against a loopback echo server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.integration

ProxyFactory = Callable[[str, int], Awaitable[FaultProxy]]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxy(fault_proxy: ProxyFactory) -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield await fault_proxy("127.0.0.1", port)
    server.close()


async def _connect(
    proxy: FaultProxy,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), 2)


async def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    assert await _roundtrip(reader, writer, b"hello") == b"hello"
    assert proxy.accepted == 1
    writer.close()


async def test_stall_holds_the_connection_open_and_pass_resumes_it(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    assert await _roundtrip(reader, writer, b"a") == b"a"
    proxy.set("stall")
    writer.write(b"held")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(10), 0.3)
    assert not reader.at_eof()  # no FIN: half-open
    proxy.set("pass")
    assert await asyncio.wait_for(reader.readexactly(4), 2) == b"held"
    writer.close()


async def test_drop_discards_without_closing(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.set("drop")
    writer.write(b"lost")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(10), 0.3)
    proxy.set("pass")
    assert await _roundtrip(reader, writer, b"next") == b"next"
    writer.close()


async def test_cut_closes_live_connections_and_refuses_new_ones(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    assert await _roundtrip(reader, writer, b"a") == b"a"
    proxy.set("cut")
    assert await asyncio.wait_for(reader.read(10), 2) == b""
    with pytest.raises(ConnectionRefusedError):
        await _connect(proxy)
    proxy.set("pass")
    reader, writer = await _connect(proxy)
    assert await _roundtrip(reader, writer, b"back") == b"back"
    writer.close()


async def test_delay_adds_latency_and_keeps_order(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.set("delay", delay_ms=150)
    started = time.monotonic()
    for chunk in (b"1", b"2", b"3"):
        writer.write(chunk)
        await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(3), 2) == b"123"
    assert time.monotonic() - started >= 0.3  # 150 ms each way
    writer.close()
