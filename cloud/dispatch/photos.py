"""Photos (and signature images) of work orders: the upload check and where the bytes go.

:func:`check_upload` accepts JPEG, PNG and WebP only, by their magic bytes — the declared
content type must agree with them, a phone's claim alone proves nothing — and at most a
configured size (:data:`DEFAULT_MAX_BYTES`, 10 MB). Refusals are
:class:`~cloud.dispatch.errors.RefusedError` naming the field and the limit.

:class:`PhotoStorage` is the interface; :class:`FilesystemPhotoStorage` keeps each photo
as a file under a root directory, written atomically (a temporary file in the same
directory, flushed and renamed over). Keys are made by the service (:func:`new_key`),
never taken from a client, and the storage refuses any key that is not of that shape, so
no key can reach outside the root.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Literal, Protocol
from uuid import uuid4

from cloud.dispatch.errors import RefusedError

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_MAX_BYTES",
    "ContentType",
    "FilesystemPhotoStorage",
    "PhotoMissing",
    "PhotoStorage",
    "check_upload",
    "new_key",
    "sniff",
]

ContentType = Literal["image/jpeg", "image/png", "image/webp"]
#: The content types accepted, with the file extension each is stored under.
CONTENT_TYPES: dict[ContentType, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
}
#: A phone's photo is 2-6 MB; 10 MB leaves room without letting one upload fill a disk.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: ``workorders/<id>/<32 hex>.<ext>``: the only keys the service makes.
_KEY_RE = re.compile(r"^workorders/[0-9]{1,19}/[0-9a-f]{32}\.(?:jpg|png|webp)$")


class PhotoMissing(LookupError):
    """No photo is stored under the key."""


class PhotoStorage(Protocol):
    """Where photo bytes live, by key. ``put`` replaces atomically; ``delete`` of a
    missing key does nothing; ``get`` of one raises :class:`PhotoMissing`."""

    def put(self, key: str, content: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


def sniff(content: bytes) -> ContentType | None:
    """The image type ``content``'s magic bytes say, or None."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    # RIFF container, 4-byte little-endian size, then the WEBP form type.
    if len(content) >= 12 and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_upload(
    content: bytes, declared_type: str, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> ContentType:
    """``content``'s content type when it is an accepted image of at most ``max_bytes``
    whose magic bytes agree with ``declared_type`` (parameters such as ``; q=…`` and case
    ignored); else :class:`RefusedError`."""
    if not content:
        raise RefusedError("content", "", "the photo is empty")
    if len(content) > max_bytes:
        raise RefusedError("content", f"{max_bytes} bytes", f"the photo is {len(content)} bytes")
    declared = declared_type.split(";", 1)[0].strip().lower()
    accepted = ", ".join(CONTENT_TYPES)
    if declared not in CONTENT_TYPES:
        raise RefusedError("content_type", accepted, f"{declared_type[:60]!r} is not accepted")
    found = sniff(content)
    if found is None:
        raise RefusedError("content", accepted, "the content is not a JPEG, PNG or WebP image")
    if found != declared:
        raise RefusedError("content_type", found, f"declared {declared} but the content is {found}")
    return found


def new_key(work_order_id: int, content_type: ContentType) -> str:
    """A fresh storage key for a photo of ``work_order_id``."""
    return f"workorders/{work_order_id}/{uuid4().hex}.{CONTENT_TYPES[content_type]}"


class FilesystemPhotoStorage:
    """Photos as files under ``root`` (created when missing), one per key."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        # The key's shape rules out "..", absolute paths and anything but our layout.
        if not _KEY_RE.match(key):
            raise ValueError(f"not a photo key: {key[:80]!r}")
        return self._root / key

    def put(self, key: str, content: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise PhotoMissing(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
