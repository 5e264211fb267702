"""Support search's shared rules (pure): bounded text and limit, and a caller's text
matched literally by ``ILIKE`` (its ``%``, ``_`` and ``\\`` escaped)."""

from __future__ import annotations

import pytest

from cloud.search import MAX_RESULTS, MAX_TEXT_CHARS, SearchRefused, contains_pattern, search_query


def test_the_pattern_matches_the_text_literally_anywhere() -> None:
    assert contains_pattern("Bondi") == "%Bondi%"
    assert contains_pattern("100%") == "%100\\%%"
    assert contains_pattern("a_b") == "%a\\_b%"
    assert contains_pattern("C:\\x") == "%C:\\\\x%"


def test_text_is_trimmed_and_a_whole_number_is_also_an_id() -> None:
    query = search_query("  1234 ", 10)
    assert (query.text, query.pattern, query.number, query.limit) == ("1234", "%1234%", 1234, 10)
    assert search_query("SN-1234", 1).number is None
    assert search_query("0", 1).number is None  # ids start at 1
    assert search_query("2147483648", 1).number is None  # beyond int4
    assert search_query("²", 1).number is None  # a digit, but not an ASCII one


@pytest.mark.parametrize(
    ("text", "limit", "field"),
    [
        ("   ", 10, "text"),
        ("x" * (MAX_TEXT_CHARS + 1), 10, "text"),
        ("a\x00b", 10, "text"),
        ("bondi", 0, "limit"),
        ("bondi", MAX_RESULTS + 1, "limit"),
    ],
)
def test_out_of_bounds_text_or_limit_is_refused_naming_the_field(
    text: str, limit: int, field: str
) -> None:
    with pytest.raises(SearchRefused) as refused:
        search_query(text, limit)
    assert refused.value.field == field
    assert isinstance(refused.value, ValueError)


def test_the_longest_text_and_the_largest_limit_are_accepted() -> None:
    query = search_query("x" * MAX_TEXT_CHARS, MAX_RESULTS)
    assert (len(query.text), query.limit) == (MAX_TEXT_CHARS, MAX_RESULTS)
