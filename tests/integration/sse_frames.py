"""Server-sent events read from a streamed answer's lines, for the portal's live pages'
tests: the frames as {field: value} (comments skipped), and the next frame of an event.
Pure functions over the lines given."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["frames_of", "next_event"]


def frames_of(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-sent events as {field: value}, comments skipped."""
    frame: dict[str, str] = {}
    for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            frame[name] = value


def next_event(frames: Iterator[dict[str, str]], event: str) -> dict[str, str]:
    """The next frame of ``event`` (those before it passed over)."""
    for frame in frames:
        if frame.get("event") == event:
            return frame
    raise AssertionError(f"the stream ended before a {event!r} event")
