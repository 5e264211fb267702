"""Process helpers of the CLI: run until a signal, load a service's settings, serve HTTP."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import ValidationError

S = TypeVar("S")


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def load_settings(cls: Callable[[], S], console: Any) -> S:
    """A cloud service's ``POTR_*`` settings (``cls``: e.g. ``IngestSettings``), or exit 2
    naming what is wrong (CLI commands)."""
    import typer
    from pydantic import ValidationError

    try:
        return cls()
    except ValidationError as exc:
        console.print(f"[red]bad POTR_* settings: {settings_errors(exc)}[/red]", highlight=False)
        raise typer.Exit(2) from None


def settings_errors(exc: ValidationError) -> str:
    """A settings ``ValidationError`` as ``field: reason; ...`` without the values given:
    they may be passwords or URLs carrying one."""
    return "; ".join(
        (".".join(str(p) for p in err["loc"]) + ": " if err["loc"] else "") + err["msg"]
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    )


async def serve_http(app: Any, host: str, port: int, stop: asyncio.Event, **config: Any) -> None:
    """Serve ``app`` with uvicorn on ``host:port`` until ``stop`` is set (``config``:
    more ``uvicorn.Config`` options, e.g. ``log_level``)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **config))
    task = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    # Either ends it: a stop request, or the server giving up (e.g. its port is taken).
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    server.should_exit = True
    await task
