"""Writing the files brokers and gateways read: secrets never readable by others, not
even for an instant, and every file replaced atomically (a broker reloading mid-write
reads the old file or the new one, never half of one).

Mosquitto started as root drops to user ``mosquitto`` before it opens its password file,
ACL, keys and CRL (pitfalls.md): a secret it must read is made 0640 with group
``mosquitto`` where that group exists and we may give it, else 0600.
"""

from __future__ import annotations

import contextlib
import grp
import os
from pathlib import Path

__all__ = ["broker_group_id", "write_private", "write_public"]


def broker_group_id(group: str | None) -> int | None:
    """The gid to give a secret the broker reads (None: keep the caller's group)."""
    if group is None or os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return grp.getgrnam(group).gr_gid
    return None


def write_private(
    path: Path, data: bytes, *, group: str | None = None, overwrite: bool = True
) -> None:
    """Write a secret: a temporary file created 0600 (group and 0640 set on the
    descriptor before a byte is written), synced, then moved into place; with
    ``overwrite=False`` an existing file is kept and :class:`FileExistsError` raised."""
    gid = broker_group_id(group)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if gid is not None:
            os.fchown(fd, -1, gid)
            os.fchmod(fd, 0o640)
        _fill(fd, data)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_public(path: Path, data: bytes) -> None:
    """Write a public file (certificate, CRL, config, ACL) atomically, mode 0644."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # whatever the umask: brokers read these as another user
        _fill(fd, data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fill(fd: int, data: bytes) -> None:
    """Write all of ``data``, sync and close ``fd``."""
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
