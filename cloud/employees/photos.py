"""An employee's badge photo: the upload check (pure).

The photo a customer is shown of the MOSIE at their door (issue 20). JPEG, PNG or WebP
only, told by the magic bytes, which must agree with the declared type (a client's claim
alone proves nothing), and at most :data:`MAX_BADGE_BYTES`: an ID photo, not a camera's.
The same rule as dispatch's job photos, restated here because a service imports no
other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["BADGE_TYPES", "MAX_BADGE_BYTES", "BadgePhoto", "BadgePhotoRefused", "check_badge_photo"]

BadgeType = Literal["image/jpeg", "image/png", "image/webp"]
BADGE_TYPES: tuple[BadgeType, ...] = ("image/jpeg", "image/png", "image/webp")
#: 256 kB: a 600 x 800 JPEG badge photo is 50-150 kB.
MAX_BADGE_BYTES = 256 * 1024


class BadgePhotoRefused(ValueError):
    """The upload is not an accepted photo; ``str()`` names the field and the limit."""


@dataclass(frozen=True, slots=True)
class BadgePhoto:
    content_type: BadgeType
    content: bytes


def _sniff(content: bytes) -> BadgeType | None:
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(content) >= 12 and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_badge_photo(content: bytes, declared_type: str) -> BadgePhoto:
    """The photo when ``content`` is an accepted image of at most the limit whose magic
    bytes agree with ``declared_type`` (parameters and case ignored); else
    :class:`BadgePhotoRefused`."""
    if not content:
        raise BadgePhotoRefused("content: the photo is empty")
    if len(content) > MAX_BADGE_BYTES:
        raise BadgePhotoRefused(
            f"content: the photo is {len(content)} bytes (limit {MAX_BADGE_BYTES})"
        )
    declared = declared_type.split(";", 1)[0].strip().lower()
    if declared not in BADGE_TYPES:
        raise BadgePhotoRefused(
            f"content_type: {declared_type[:60]!r} is not accepted (limit {', '.join(BADGE_TYPES)})"
        )
    found = _sniff(content)
    if found is None:
        raise BadgePhotoRefused("content: the content is not a JPEG, PNG or WebP image")
    if found != declared:
        raise BadgePhotoRefused(f"content_type: declared {declared} but the content is {found}")
    return BadgePhoto(found, content)
