"""Counters of the control path, read by ``/metrics`` when scraped."""

from __future__ import annotations

from collections import Counter

__all__ = ["ControlStats"]


class ControlStats:
    """Commands and configs by outcome, refusals by code, Modbus writes by outcome."""

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()
        self.configs: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
