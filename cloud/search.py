"""Support search's shared rules: how much text a search takes, how many answers it
gives, and the SQL ``ILIKE`` pattern it becomes. Pure; knows no service.

The customers service (accounts by name, email) and the registry (sites by name or id,
devices by serial or local id) each search their own tables with these, so a support
screen asking both gets the same bounds and the same matching from each.

Why ``ILIKE`` and not ``pg_trgm``: no migration creates the extension, and it is a
contrib module that not every server this project runs on offers (the demo's embedded
PostgreSQL, PGlite), so a migration needing it would fail there. A substring
``ILIKE '%…%'`` uses no index — a sequential scan of accounts, sites and devices — which
a support search, at a person's pace and with its text bounded, affords; a trigram GIN
index is the way up when a region's tables make it slow. The caller's text is escaped
(``\\``, ``%``, ``_``), so it is always matched literally: ``100%`` is no wildcard and
``_`` no single-character joker.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud.apitypes import INT4_MAX

__all__ = [
    "LIKE_ESCAPE",
    "MAX_RESULTS",
    "MAX_TEXT_CHARS",
    "SearchQuery",
    "SearchRefused",
    "contains_pattern",
    "search_query",
]

#: Characters of search text (after trimming): enough for any name, email or serial.
MAX_TEXT_CHARS = 100
#: Answers per search: a screenful; a support person narrows the text rather than pages.
MAX_RESULTS = 50
#: The escape character the patterns are written with (``ILIKE … ESCAPE '\'``).
LIKE_ESCAPE = "\\"


class SearchRefused(ValueError):
    """Search text or limit out of bounds: ``field``, ``limit`` and ``reason`` name why."""

    def __init__(self, field: str, limit: str, reason: str) -> None:
        self.field, self.limit, self.reason = field, limit, reason
        super().__init__(f"{field}: {reason} (limit {limit})")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Checked search text: ``text`` trimmed, ``pattern`` its escaped ``ILIKE``
    substring pattern, ``number`` the text as an id when it is a positive ``int4``
    (else None), ``limit`` the answers wanted."""

    text: str
    pattern: str
    number: int | None
    limit: int


def contains_pattern(text: str) -> str:
    """An ``ILIKE … ESCAPE '\\'`` pattern matching ``text`` literally anywhere."""
    escaped = (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def search_query(text: str, limit: int) -> SearchQuery:
    """``text`` trimmed and checked (1 to :data:`MAX_TEXT_CHARS` characters, no NUL,
    which PostgreSQL text cannot hold) and ``limit`` (1 to :data:`MAX_RESULTS`);
    :class:`SearchRefused` otherwise."""
    trimmed = text.strip()
    if not trimmed:
        raise SearchRefused("text", f"1..{MAX_TEXT_CHARS} characters", "nothing to search for")
    if len(trimmed) > MAX_TEXT_CHARS:
        raise SearchRefused(
            "text", f"{MAX_TEXT_CHARS} characters", f"{len(trimmed)} characters is too long"
        )
    if "\x00" in trimmed:
        raise SearchRefused("text", "no NUL character", "contains a NUL character")
    if not 1 <= limit <= MAX_RESULTS:
        raise SearchRefused("limit", f"1..{MAX_RESULTS}", f"{limit} is out of range")
    return SearchQuery(trimmed, contains_pattern(trimmed), _as_id(trimmed), limit)


def _as_id(text: str) -> int | None:
    # ASCII digits only: str.isdigit() also takes '²' and other scripts' digits.
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number <= INT4_MAX else None
