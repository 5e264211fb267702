"""Writing the files a broker reads: secrets never world-readable, everything atomic.

Mosquitto 2.0.11 started as root drops to user ``mosquitto`` before it opens its password
and ACL files, and reads its TLS key, certificates and CRL again *as that user* on every
reload (SIGHUP) — a key it cannot read then leaves the listener without a certificate,
refusing every handshake. So a secret the broker reads is written 0640 with group
``mosquitto`` (owner: whoever writes it), any other secret 0600; the mode and group are
set on the descriptor before the first byte, so the content is never readable by others,
not even for a moment.
"""

from __future__ import annotations

import grp
import os
import secrets
from pathlib import Path

__all__ = ["FileExistsRefused", "group_id", "write_public", "write_secret"]


class FileExistsRefused(FileExistsError):
    """The target exists and the caller asked never to overwrite it."""


def write_secret(
    path: Path, data: bytes, *, group: str | None = None, overwrite: bool = False
) -> None:
    """Write ``data`` to ``path`` as 0600 (0640 for ``group``), atomically.

    ``overwrite=False`` refuses an existing file (a key must never be replaced by
    mistake): :class:`FileExistsRefused`. ``group`` must exist (``KeyError`` otherwise).
    """
    gid = None if group is None else group_id(group)
    tmp = _temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if gid is not None:
            os.fchown(fd, -1, gid)
            os.fchmod(fd, 0o640)
        else:
            os.fchmod(fd, 0o600)  # an existing umask cannot widen it; this keeps it exact
    except BaseException:
        os.close(fd)
        tmp.unlink()
        raise
    _fill(fd, data)
    _place(tmp, path, overwrite=overwrite)


def write_public(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write a public file (certificate, CRL, index, config) as 0644, atomically: a reader
    — the broker on reload — sees the old content or the new, never half of it."""
    tmp = _temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.fchmod(fd, 0o644)  # whatever the umask: the broker reads it as another user
    _fill(fd, data)
    _place(tmp, path, overwrite=overwrite)


def group_id(group: str) -> int:
    """The id of ``group``; ``KeyError`` naming it when the host has no such group."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise KeyError(f"no group {group!r} on this host") from None


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _fill(fd: int, data: bytes) -> None:
    """Write all of ``data``, sync and close ``fd``."""
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _place(tmp: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if ``path`` exists: no check-then-write race
    except FileExistsError:
        raise FileExistsRefused(f"{path} exists; refusing to overwrite it") from None
    finally:
        tmp.unlink()
