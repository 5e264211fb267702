"""The photo upload check (magic bytes, declared type, size) and the filesystem storage
(atomic writes, keys only of the service's shape)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.dispatch.errors import RefusedError
from cloud.dispatch.photos import (
    FilesystemPhotoStorage,
    PhotoMissing,
    check_upload,
    new_key,
    sniff,
)

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
WEBP = b"RIFF" + (20).to_bytes(4, "little") + b"WEBPVP8 " + b"\x00" * 8
GIF = b"GIF89a" + b"\x00" * 16


@pytest.mark.parametrize(
    ("content", "declared"),
    [(JPEG, "image/jpeg"), (PNG, "image/png"), (WEBP, "image/webp"), (PNG, "Image/PNG; q=1")],
)
def test_an_accepted_image_passes_with_its_type(content: bytes, declared: str) -> None:
    assert check_upload(content, declared) == declared.split(";")[0].lower()


def test_sniff_knows_only_jpeg_png_and_webp() -> None:
    assert sniff(GIF) is None
    assert sniff(b"RIFF\x00\x00\x00\x00WAVE") is None
    assert sniff(b"") is None


@pytest.mark.parametrize(
    ("content", "declared", "field"),
    [
        (GIF, "image/png", "content"),  # the magic bytes are no accepted image
        (PNG, "image/jpeg", "content_type"),  # the claim disagrees with the bytes
        (GIF, "image/gif", "content_type"),  # the type is not accepted at all
        (b"", "image/png", "content"),
    ],
)
def test_a_wrong_image_is_refused_naming_the_field(
    content: bytes, declared: str, field: str
) -> None:
    with pytest.raises(RefusedError) as refused:
        check_upload(content, declared)
    assert refused.value.field == field


def test_the_size_limit_is_configurable_and_inclusive() -> None:
    assert check_upload(PNG, "image/png", max_bytes=len(PNG)) == "image/png"
    with pytest.raises(RefusedError, match=f"limit {len(PNG) - 1} bytes"):
        check_upload(PNG, "image/png", max_bytes=len(PNG) - 1)


def test_the_storage_writes_atomically_and_reads_back(tmp_path: Path) -> None:
    storage = FilesystemPhotoStorage(tmp_path)
    key = new_key(41, "image/png")
    storage.put(key, PNG)
    storage.put(key, JPEG)  # replaced whole
    assert storage.get(key) == JPEG
    assert [p.name for p in (tmp_path / "workorders" / "41").iterdir()] == [key.rsplit("/")[-1]]
    storage.delete(key)
    storage.delete(key)  # a second delete does nothing
    with pytest.raises(PhotoMissing):
        storage.get(key)


@pytest.mark.parametrize(
    "key",
    [
        "../escape.png",
        "/etc/passwd",
        "workorders/1/../../x.png",
        "workorders/1/" + "a" * 32 + ".exe",
        "workorders/1/name.png",
    ],
)
def test_the_storage_refuses_a_key_it_did_not_make(tmp_path: Path, key: str) -> None:
    storage = FilesystemPhotoStorage(tmp_path / "root")
    with pytest.raises(ValueError, match="not a photo key"):
        storage.put(key, PNG)
    assert not (tmp_path / "root").exists()
