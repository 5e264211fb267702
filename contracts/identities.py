"""Who may speak on a regional broker: the MQTT usernames of gateways, services and
field technicians.

A gateway's username is its gateway id. Every other identity is ``_<kind>/<name>``:
the leading ``_`` keeps it apart from every gateway id (``GATEWAY_ID_RE`` never starts
with ``_``), and the ``/`` matters for the broker's ``pattern`` ACL lines, which apply
to every user: substituted into ``potr/v1/au/%u/telemetry`` a service name gives a
topic two levels deeper than ``potr/v1/au/+/telemetry``, which no ingest subscription
matches, so a service or technician can never pass for a gateway. The same rule makes a
technician's own topics (``potr/v1/<region>/_tech/<user>/<kind>``, protocol.md) exactly
what ``pattern write potr/v1/au/%u/config_req`` grants to ``_tech/<user>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from contracts.topics import GATEWAY_ID_RE, Region, TopicError

__all__ = [
    "NAME_RE",
    "BrokerIdentity",
    "IdentityError",
    "IdentityKind",
    "parse_username",
    "username_for",
]

#: The name part of a service or technician username (no ``/``, ``+``, ``#`` or ``:``:
#: the broker's password file splits at ``:`` and its ACL denies ``+``/``#`` names).
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class IdentityError(ValueError):
    """A username or identity that breaks the naming rules."""


class IdentityKind(StrEnum):
    GATEWAY = "gateway"
    INGEST = "ingest"
    CONFIG = "config"
    ADMIN = "admin"
    TECHNICIAN = "technician"
    #: Reads the broker's own ``$SYS`` statistics (clients, messages, drops) and nothing else.
    MONITOR = "monitor"


#: The username prefix of every kind but gateways.
_PREFIX: dict[IdentityKind, str] = {
    IdentityKind.INGEST: "_ingest/",
    IdentityKind.CONFIG: "_config/",
    IdentityKind.ADMIN: "_admin/",
    IdentityKind.TECHNICIAN: "_tech/",
    IdentityKind.MONITOR: "_monitor/",
}


def username_for(kind: IdentityKind | str, name: str) -> str:
    """The username of ``name`` as an identity of ``kind``; :class:`IdentityError` when
    the name does not fit (a gateway name must be a valid gateway id)."""
    kind = IdentityKind(kind)
    if kind is IdentityKind.GATEWAY:
        if not GATEWAY_ID_RE.match(name):
            raise IdentityError(f"gateway id {name!r} must match {GATEWAY_ID_RE.pattern}")
        return name
    if not NAME_RE.match(name):
        raise IdentityError(f"{kind.value} name {name!r} must match {NAME_RE.pattern}")
    return _PREFIX[kind] + name


def parse_username(username: str) -> tuple[IdentityKind, str]:
    """``(kind, name)`` of a username made by :func:`username_for`."""
    if GATEWAY_ID_RE.match(username):
        return IdentityKind.GATEWAY, username
    for kind, prefix in _PREFIX.items():
        if username.startswith(prefix):
            name = username[len(prefix) :]
            if NAME_RE.match(name):
                return kind, name
    raise IdentityError(f"{username!r} is neither a gateway id nor _<kind>/<name>")


@dataclass(frozen=True, slots=True)
class BrokerIdentity:
    """One username on one region's broker, as the ACL renders it.

    ``blocked``: a certificate identity that was revoked. Its live TLS session survives
    a CRL reload (pitfalls.md), so the ACL denies it everything until it is gone.
    """

    username: str
    #: None: every region of a broker serving several (the one-broker demo's services).
    region: Region | None
    blocked: bool = False

    def __post_init__(self) -> None:
        if self.region is not None:
            try:
                Region(self.region)
            except ValueError:
                raise TopicError(f"unknown region {self.region!r}") from None
        kind, _ = parse_username(self.username)
        if self.region is None and kind in (IdentityKind.GATEWAY, IdentityKind.TECHNICIAN):
            raise IdentityError(f"{self.username!r}: a {kind.value} belongs to one region")

    @property
    def kind(self) -> IdentityKind:
        return parse_username(self.username)[0]
