"""The door code (issue 20), pure: six digits per 2-minute step, visit and assignee, as
RFC 4226's truncation of HMAC-SHA256 computed here by hand; its ``repr`` hides it; and
the badge photo's upload check."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from cloud.dispatch.door_code import door_code
from cloud.employees.photos import MAX_BADGE_BYTES, BadgePhotoRefused, check_badge_photo

SECRET = bytes(range(32))
AT = datetime(2026, 12, 6, 1, 59, 59, tzinfo=UTC)


def _by_hand(step: int, visit: int, who: str) -> str:
    message = step.to_bytes(8, "big") + visit.to_bytes(4, "big") + who.encode()
    digest = hmac.new(SECRET, message, hashlib.sha256).digest()
    offset = digest[-1] & 0x0F
    return f"{(int.from_bytes(digest[offset : offset + 4], 'big') & 0x7FFFFFFF) % 10**6:06d}"


def test_the_code_is_the_steps_hmac_truncated_and_valid_to_the_steps_end() -> None:
    step = int(AT.timestamp()) // 120
    found = door_code(SECRET, 1, "E00001", AT)
    assert found.code == _by_hand(step, 1, "E00001")
    assert found.valid_until == datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
    # One second later is the next step.
    later = door_code(SECRET, 1, "E00001", AT + timedelta(seconds=1))
    assert later.code == _by_hand(step + 1, 1, "E00001")
    assert later.valid_until == datetime(2026, 12, 6, 2, 2, tzinfo=UTC)


def test_the_visit_and_the_assignee_are_in_the_code() -> None:
    step = int(AT.timestamp()) // 120
    assert door_code(SECRET, 2, "E00001", AT).code == _by_hand(step, 2, "E00001")
    assert door_code(SECRET, 1, "E00002", AT).code == _by_hand(step, 1, "E00002")


def test_the_code_never_shows_in_a_repr_and_a_short_secret_is_refused() -> None:
    found = door_code(SECRET, 1, "E00001", AT)
    assert found.code not in repr(found)
    with pytest.raises(ValueError, match="16 bytes"):
        door_code(b"short", 1, "E00001", AT)


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 "


@pytest.mark.parametrize(
    ("content", "declared"),
    [(PNG, "image/png"), (JPEG, "IMAGE/JPEG; q=1"), (WEBP, "image/webp")],
)
def test_a_badge_photo_of_an_accepted_type_passes(content: bytes, declared: str) -> None:
    assert check_badge_photo(content, declared).content == content


@pytest.mark.parametrize(
    ("content", "declared", "field"),
    [
        (b"", "image/png", "content:"),
        (PNG, "image/jpeg", "content_type:"),  # the bytes say otherwise
        (b"GIF89a" + b"\x00" * 10, "image/png", "content:"),
        (PNG, "image/gif", "content_type:"),
        (b"\xff\xd8\xff" + b"\x00" * MAX_BADGE_BYTES, "image/jpeg", "content:"),
    ],
)
def test_a_bad_badge_photo_is_refused_naming_the_field(
    content: bytes, declared: str, field: str
) -> None:
    with pytest.raises(BadgePhotoRefused, match=f"^{field}"):
        check_badge_photo(content, declared)
