"""The CLI's rich console, made afresh at each use.

rich sizes a ``Console`` when it is made (``COLUMNS``, else the terminal); a console made
at import keeps the width of whatever imported it first — a test runner's worker, a
shell that was resized since — so each command's output is laid out for the width of
its own call instead.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

__all__ = ["CallConsole"]


class CallConsole:
    """Stands for ``Console(**options)``: every attribute is a fresh console's."""

    def __init__(self, **options: Any) -> None:
        self._options = options

    def now(self) -> Console:
        """A console for this call (for what takes a ``Console``, e.g. ``Live``)."""
        return Console(**self._options)

    def __getattr__(self, name: str) -> Any:
        return getattr(Console(**self._options), name)
