"""The MQTT credentials file: which password each of a host's broker identities uses.

Written by provisioning (``write_credentials``), read by the cloud processes at connect
time (``read_credentials``, via ``POTR_MQTT_CREDENTIALS_FILE``). Format: a YAML mapping
of username to password, nothing else::

    _ingest/au-0: "Zq3...43 URL-safe characters"
    _ingest/au-1: "k8P..."

The file is the secret, so it must be the owner's alone: written 0600, and refused on
reading when its group or others may read or write it (as ``ssh`` refuses a key). A
refusal names the file and the username, never a password.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import SecretStr

__all__ = [
    "CredentialsError",
    "SecretFileTooOpenError",
    "read_credentials",
    "read_owner_only",
    "write_credentials",
]


class CredentialsError(RuntimeError):
    """The credentials file is missing, too open, malformed, or lacks an identity."""


class SecretFileTooOpenError(ValueError):
    """A secret file its group or others may read or write."""


def read_owner_only(path: Path) -> bytes:
    """The bytes of secret file ``path``, which must be its owner's alone (as ``ssh``
    refuses a key): :class:`SecretFileTooOpenError` otherwise; ``OSError`` when it cannot
    be read. The mode is checked on the file opened, not on the name."""
    with path.open("rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        raw = fh.read()
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileTooOpenError(
            f"{path} is mode {stat.S_IMODE(mode):04o}: group and others may not read it (chmod 600)"
        )
    return raw


def read_credentials(path: Path) -> dict[str, SecretStr]:
    """``{username: password}`` from ``path``; :class:`CredentialsError` if it is not
    the owner's alone or not a mapping of strings to strings."""
    try:
        raw = read_owner_only(path)
    except OSError as exc:
        raise CredentialsError(f"cannot read credentials file {path}: {exc.strerror}") from None
    except SecretFileTooOpenError as exc:
        raise CredentialsError(f"credentials file {exc}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        # The parser's message quotes the offending line, which may hold a password.
        raise CredentialsError(f"credentials file {path} is not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CredentialsError(f"credentials file {path}: expected a mapping username: password")
    out: dict[str, SecretStr] = {}
    for user, password in data.items():
        if not isinstance(user, str) or not isinstance(password, str) or not password:
            raise CredentialsError(
                f"credentials file {path}: entry {user!r} must be username: non-empty string"
            )
        out[user] = SecretStr(password)
    return out


def write_credentials(path: Path, passwords: Mapping[str, str | SecretStr]) -> None:
    """Write ``passwords`` to ``path`` (mode 0600, replacing it atomically)."""
    plain = {
        user: p.get_secret_value() if isinstance(p, SecretStr) else p
        for user, p in sorted(passwords.items())
    }
    text = yaml.safe_dump(plain, default_flow_style=False, allow_unicode=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
