"""Refusals of data files (profiles, scenarios): the file, the key and the reason."""

from __future__ import annotations


class DataFileError(ValueError):
    """A data file that must not load: ``file``, ``key`` (dotted path) and ``reason``."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file, self.key, self.reason = file, key, reason
        super().__init__(f"{file}: {key or '<root>'}: {reason}")


def key_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted key: ``devices[0].profile``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
