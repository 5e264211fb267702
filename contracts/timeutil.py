"""Timestamps on the wire: UTC, RFC 3339 with milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_wire(ts: datetime) -> str:
    """Format as ``YYYY-MM-DDTHH:MM:SS.mmmZ``; naive datetimes are refused."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: timestamps on the wire are UTC")
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def truncate_ms(ts: datetime) -> datetime:
    """Drop sub-millisecond precision, so a reading keeps its key across a round trip."""
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000)
