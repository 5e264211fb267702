"""Run a coroutine until SIGINT/SIGTERM, then let it stop cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def cloud_settings(console: Any) -> Any:
    """The cloud's ``POTR_*`` settings, or exit 2 naming what is wrong (CLI commands)."""
    import typer
    from pydantic import ValidationError

    from cloud.settings import CloudSettings

    try:
        return CloudSettings()
    except ValidationError as exc:
        console.print(f"[red]bad POTR_* settings: {exc}[/red]")
        raise typer.Exit(2) from None
