"""A TCP proxy on loopback that injects link faults between two real processes.

``async with FaultProxy(host, port) as proxy`` listens on ``proxy.port`` and forwards
every connection to ``host:port``. Its mode applies to every connection, live or new:

- ``pass``: forward both ways.
- ``drop``: a black hole — bytes are read and discarded both ways, new connections are
  accepted and go nowhere; nothing is closed.
- ``stall``: a half-open link — nothing is read or forwarded either way, sockets stay
  open (no FIN, no RST), new connections wait; setting ``pass`` again resumes them.
- ``cut``: every connection is closed at once and nothing listens (new connections are
  refused, like a broker that is down) until another mode is set.
- ``delay``: forward both ways, each chunk ``delay_ms`` later (order kept).

Kernel traffic shaping is not available here, hence a proxy (see reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["pass", "drop", "stall", "cut", "delay"]
CHUNK = 65536


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side and the upstream side."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            writer.close()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.mode: Mode = "pass"
        self.delay_ms = 0.0
        #: Connections accepted so far (a reconnect shows up as one more).
        self.accepted = 0
        self._changed = asyncio.Event()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._relisten: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def open_links(self) -> int:
        return len(self._links)

    def set(self, mode: Mode, *, delay_ms: float = 0.0) -> None:
        """Switch every connection (and new ones) to ``mode``."""
        was_cut = self.mode == "cut"
        self.mode = mode
        self.delay_ms = delay_ms
        if mode == "cut" and not was_cut:
            if self._server is not None:
                self._server.close()
                self._server = None
            for link in list(self._links):
                link.close()
            self._links.clear()
        elif was_cut and mode != "cut":
            self._listen(socket.create_server((self.host, self.port)))
        self._changed.set()
        self._changed = asyncio.Event()

    def _listen(self, sock: socket.socket) -> None:
        """Serve ``sock``, already listening: the kernel queues connections meanwhile."""

        async def serve() -> None:
            self._server = await asyncio.start_server(self._accept, sock=sock)

        self._relisten = asyncio.create_task(serve())

    async def start(self) -> FaultProxy:
        sock = socket.create_server((self.host, 0))
        self.port = sock.getsockname()[1]
        self._listen(sock)
        assert self._relisten is not None
        await self._relisten
        return self

    async def close(self) -> None:
        if self._relisten is not None:
            await self._relisten
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.close()
        self._links.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----- per connection ----------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "cut":
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]

    async def _gate(self) -> None:
        """Return once forwarding may go on (not stalled)."""
        while self.mode == "stall":
            await self._changed.wait()

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: _Link
    ) -> None:
        # Every chunk goes through one queue per direction, so a delay keeps the order.
        outgoing: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(outgoing, dst))
        try:
            while True:
                await self._gate()
                data = await src.read(CHUNK)
                if not data:
                    break
                if self.mode == "drop":
                    continue
                delay = self.delay_ms / 1000 if self.mode == "delay" else 0.0
                outgoing.put_nowait((time.monotonic() + delay, data))
        except OSError:
            pass
        finally:
            sender.cancel()
            self._links.discard(link)
            link.client.close()
            link.upstream.close()

    async def _send(
        self, outgoing: asyncio.Queue[tuple[float, bytes]], dst: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError):
            while True:
                due, data = await outgoing.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._gate()  # data read just before a stall waits with the link
                if self.mode == "drop":
                    continue
                dst.write(data)
                await dst.drain()
