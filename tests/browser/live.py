"""An ASGI app served by uvicorn on loopback in a background thread, for the browser.

The socket is bound and listening before the thread starts, so the browser's first
request waits in the backlog until uvicorn accepts it: no readiness polling, no port race.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

__all__ = ["serve_asgi"]


@contextmanager
def serve_asgi(app: Any, *, host: str = "127.0.0.1", **config: Any) -> Iterator[int]:
    """Serve ``app`` on ``host`` (a free port, yielded) until the block ends; ``config``:
    more ``uvicorn.Config`` options."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(128)
    config.setdefault("log_level", "warning")
    server = uvicorn.Server(uvicorn.Config(app, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
