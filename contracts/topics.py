"""MQTT topic builders and parsers: ``potr/v1/<region>/<gateway_id>/<kind>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "potr/v1"
GATEWAY_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")


class Region(StrEnum):
    AU = "au"
    US = "us"
    ES = "es"


class Kind(StrEnum):
    STATE = "state"
    BIRTH = "birth"
    TELEMETRY = "telemetry"
    EVENT = "event"
    STORED = "stored"
    CMD = "cmd"
    CMD_ACK = "cmd_ack"
    CONFIG = "config"
    CONFIG_STATE = "config_state"
    CONFIG_REQ = "config_req"
    CONFIG_RESP = "config_resp"


#: Kinds a gateway publishes; ingest is their single consumer.
GATEWAY_TO_CLOUD: frozenset[Kind] = frozenset(
    {Kind.STATE, Kind.BIRTH, Kind.TELEMETRY, Kind.EVENT, Kind.CMD_ACK, Kind.CONFIG_STATE}
)
#: Kinds the cloud publishes to a gateway.
CLOUD_TO_GATEWAY: frozenset[Kind] = frozenset({Kind.STORED, Kind.CMD, Kind.CONFIG})
#: Kinds the broker must retain.
RETAINED: frozenset[Kind] = frozenset({Kind.STATE, Kind.CONFIG, Kind.CONFIG_STATE})


class TopicError(ValueError):
    """A topic that is not part of the contract."""


@dataclass(frozen=True, slots=True)
class GatewayTopic:
    region: Region
    gateway_id: str
    kind: Kind

    def __str__(self) -> str:
        return topic(self.region, self.gateway_id, self.kind)


def validate_gateway_id(gateway_id: str) -> str:
    if not GATEWAY_ID_RE.match(gateway_id):
        raise TopicError(f"gateway id {gateway_id!r} must match {GATEWAY_ID_RE.pattern}")
    return gateway_id


def topic(region: Region | str, gateway_id: str, kind: Kind | str) -> str:
    """Build the topic of one gateway's message kind."""
    return f"{PREFIX}/{Region(region).value}/{validate_gateway_id(gateway_id)}/{Kind(kind).value}"


def parse_topic(raw: str) -> GatewayTopic:
    """Parse a gateway topic; raise :class:`TopicError` naming what is wrong."""
    parts = raw.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise TopicError(f"topic {raw!r} is not potr/v1/<region>/<gateway_id>/<kind>")
    _, _, region, gateway_id, kind = parts
    try:
        reg = Region(region)
    except ValueError:
        raise TopicError(f"unknown region {region!r} in topic {raw!r}") from None
    try:
        knd = Kind(kind)
    except ValueError:
        raise TopicError(f"unknown kind {kind!r} in topic {raw!r}") from None
    return GatewayTopic(reg, validate_gateway_id(gateway_id), knd)


def ingest_filter(
    region: Region | str | None = None,
    kind: Kind | str | None = None,
    *,
    shared_group: str | None = "ingest",
) -> str:
    """Subscription filter for ingest; ``shared_group=None`` for brokers without ``$share``."""
    reg = Region(region).value if region else "+"
    knd = Kind(kind).value if kind else "+"
    base = f"{PREFIX}/{reg}/+/{knd}"
    return f"$share/{shared_group}/{base}" if shared_group else base


def gateway_subscriptions(region: Region | str, gateway_id: str) -> list[str]:
    """Topics an agent subscribes to (cloud → gateway)."""
    return [topic(region, gateway_id, k) for k in sorted(CLOUD_TO_GATEWAY)]


# -- field technicians: potr/v1/<region>/_tech/<name>/<kind> ---------------------------------
#: The second-to-last level of a technician's topics (their username is ``_tech/<name>``).
TECH_LEVEL = "_tech"
TECH_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
#: What a technician sends (``config_req``) and what it is answered with.
TECH_KINDS: frozenset[Kind] = frozenset({Kind.CONFIG_REQ, Kind.CONFIG_RESP})


@dataclass(frozen=True, slots=True)
class TechTopic:
    region: Region
    #: The technician's name: their broker username is ``_tech/<name>``.
    name: str
    kind: Kind

    @property
    def username(self) -> str:
        return f"{TECH_LEVEL}/{self.name}"

    def __str__(self) -> str:
        return tech_topic(self.region, self.name, self.kind)


def tech_topic(region: Region | str, name: str, kind: Kind | str) -> str:
    """The topic of one technician's message kind (``name``: the part after ``_tech/``)."""
    knd = Kind(kind)
    if knd not in TECH_KINDS or not TECH_NAME_RE.match(name):
        raise TopicError(f"no technician topic for {name!r}/{knd.value}")
    return f"{PREFIX}/{Region(region).value}/{TECH_LEVEL}/{name}/{knd.value}"


def parse_tech_topic(raw: str) -> TechTopic:
    """Parse a technician topic; :class:`TopicError` naming what is wrong."""
    parts = raw.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != PREFIX or parts[3] != TECH_LEVEL:
        raise TopicError(f"topic {raw!r} is not potr/v1/<region>/_tech/<name>/<kind>")
    _, _, region, _, name, kind = parts
    try:
        reg, knd = Region(region), Kind(kind)
    except ValueError:
        raise TopicError(f"unknown region or kind in topic {raw!r}") from None
    if knd not in TECH_KINDS or not TECH_NAME_RE.match(name):
        raise TopicError(f"topic {raw!r} is not a technician's")
    return TechTopic(reg, name, knd)


def tech_request_filter(region: Region | str) -> str:
    """Every technician's requests in ``region`` (what the config service reads)."""
    return f"{PREFIX}/{Region(region).value}/{TECH_LEVEL}/+/{Kind.CONFIG_REQ.value}"
