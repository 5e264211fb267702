"""The events services exchange: names and payload models, shared by producer and consumer.

A producer builds the :class:`~cloud.events.outbox.Event` with a helper here; a consumer
parses ``event.payload`` with the same model, so neither imports the other service.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field

from cloud.events.outbox import Event
from contracts.events import EventType
from contracts.messages import DeviceInfo, DeviceStatus
from contracts.topics import Region

__all__ = [
    "ACCOUNT_ID_PATTERN",
    "COMMAND_ACKED",
    "COMMAND_DONE",
    "COMMAND_EXPIRED",
    "COMMAND_FAILED",
    "CONFIG_APPLIED",
    "CONFIG_DRIFTED",
    "CONFIG_FAILED",
    "CONFIG_REPORTED",
    "CUSTOMER_CREATED",
    "CUSTOMER_UPDATED",
    "DEVICE_ASLEEP",
    "DEVICE_DAY_COMPLETENESS",
    "DEVICE_DISCOVERED",
    "DEVICE_FAULTY",
    "DEVICE_OFFLINE",
    "DEVICE_ONLINE",
    "ENERGY_REVISED",
    "GATEWAY_BIRTH",
    "GATEWAY_OFFLINE",
    "GATEWAY_ONLINE",
    "GATEWAY_REGISTERED",
    "GATEWAY_UPDATED",
    "SITE_INSTALLATION_CHANGED",
    "SITE_METER_REPLACED",
    "TELEMETRY_RECEIVED",
    "AccountId",
    "CommandAcked",
    "CommandOutcome",
    "ConfigOutcome",
    "ConfigReported",
    "CustomerAccount",
    "DeviceDayCompleteness",
    "DeviceDiscovered",
    "DevicePresence",
    "EnergyRevised",
    "GatewayBirth",
    "GatewayEventReported",
    "GatewayPresence",
    "GatewayRegistration",
    "InstallationChanged",
    "MeterReplaced",
    "TelemetryReceived",
    "command_outcome_event",
    "config_outcome_event",
    "customer_account_event",
    "device_day_completeness_event",
    "device_presence_event",
    "energy_revised_event",
    "gateway_birth_event",
    "gateway_event_name",
    "gateway_presence_event",
    "gateway_registration_event",
    "installation_changed_event",
    "meter_replaced_event",
]

#: A customer account's id ("acc_" + uuid4 hex), unique across regions: the customers
#: service hands it out, the registry keeps it on the sites the account owns.
ACCOUNT_ID_PATTERN = r"^acc_[0-9a-f]{32}$"
AccountId = Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN, min_length=36, max_length=36)]

#: Ingest saw a gateway's ``birth``: its devices and their keys (the registry upserts them).
GATEWAY_BIRTH = "gateway.birth"


class GatewayBirth(BaseModel):
    """Payload of ``gateway.birth``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    stream_id: UUID
    boot_id: str
    agent_version: str
    publish_interval_s: float
    devices: list[DeviceInfo]
    #: Local id → the device's key, allocated by ingest in the birth's transaction.
    device_ids: dict[str, int] = Field(default_factory=dict)


def _event(
    name: str,
    region: Region | str,
    source: str,
    payload: BaseModel,
    *,
    event_id: UUID | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """An event carrying ``payload`` (its JSON form); ``id`` and ``occurred_at`` take the
    event's defaults (a new id, now) unless given."""
    fields: dict[str, object] = {
        "name": name,
        "region": region,
        "source": source,
        "payload": payload.model_dump(mode="json"),
    }
    if event_id is not None:
        fields["id"] = event_id
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    return Event.model_validate(fields)


def gateway_birth_event(
    region: Region | str,
    birth: GatewayBirth,
    *,
    occurred_at: datetime | None = None,
    source: str = "ingest",
) -> Event:
    """The ``gateway.birth`` event for ``birth`` (``occurred_at`` defaults to now)."""
    return _event(GATEWAY_BIRTH, region, source, birth, occurred_at=occurred_at)


#: Ingest stored a gateway's ``cmd_ack`` (the config service follows the command).
COMMAND_ACKED = "command.acked"
#: Ingest stored a gateway's ``config_state`` (the config service tracks it per device).
CONFIG_REPORTED = "config.reported"
#: The config service: a command ended ``done``.
COMMAND_DONE = "command.done"
#: The config service: a command ended ``failed`` or ``rejected`` (``status`` says which).
COMMAND_FAILED = "command.failed"
#: The config service: a command ended ``expired`` (the gateway said so, or no final ack
#: arrived by ``expires_at`` + grace).
COMMAND_EXPIRED = "command.expired"
#: The config service: a gateway's reported config status became applied/failed/drifted.
CONFIG_APPLIED = "config.applied"
CONFIG_FAILED = "config.failed"
CONFIG_DRIFTED = "config.drifted"


class CommandAcked(BaseModel):
    """Payload of ``command.acked`` (what ingest emits for one ``cmd_ack``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    command_id: UUID
    status: Literal["accepted", "rejected", "done", "failed", "expired"]
    detail: str = ""


class ConfigReported(BaseModel):
    """Payload of ``config.reported`` (what ingest emits for one ``config_state``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    version: int | None = None
    hash: str | None = None
    status: Literal["pending", "applied", "failed", "drifted"]
    devices: dict[str, Literal["pending", "applied", "failed", "drifted"]] = Field(
        default_factory=dict
    )
    points: dict[str, dict[str, Any]] = Field(default_factory=dict)
    drift: list[str] = Field(default_factory=list)
    detail: str = ""


class CommandOutcome(BaseModel):
    """Payload of ``command.done`` / ``command.failed`` / ``command.expired``.

    ``status`` is the final status (``rejected`` travels as ``command.failed``);
    ``previous`` the status before (``expired`` when a late ack corrects the cloud's
    timeout); ``closed_by`` ``gateway`` (its ack) or ``cloud`` (timeout).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    command_id: UUID
    name: str
    device: str | None
    status: Literal["done", "failed", "rejected", "expired"]
    previous: str
    detail: str
    issued_by: str
    closed_by: Literal["gateway", "cloud"]


class ConfigOutcome(BaseModel):
    """Payload of ``config.applied`` / ``config.failed`` / ``config.drifted``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    version: int | None
    desired_version: int | None
    hash: str | None
    status: Literal["applied", "failed", "drifted"]
    devices: dict[str, str]
    drift: list[str]
    detail: str


_COMMAND_EVENTS = {
    "done": COMMAND_DONE,
    "failed": COMMAND_FAILED,
    "rejected": COMMAND_FAILED,
    "expired": COMMAND_EXPIRED,
}
_CONFIG_EVENTS = {"applied": CONFIG_APPLIED, "failed": CONFIG_FAILED, "drifted": CONFIG_DRIFTED}


def command_outcome_event(
    event_id: UUID, region: Region | str, outcome: CommandOutcome, *, source: str = "config"
) -> Event:
    """``command.done`` / ``command.failed`` / ``command.expired`` for ``outcome``."""
    return _event(_COMMAND_EVENTS[outcome.status], region, source, outcome, event_id=event_id)


def config_outcome_event(
    event_id: UUID, region: Region | str, outcome: ConfigOutcome, *, source: str = "config"
) -> Event:
    """``config.applied`` / ``config.failed`` / ``config.drifted`` for ``outcome``."""
    return _event(_CONFIG_EVENTS[outcome.status], region, source, outcome, event_id=event_id)


#: Ingest's offline check: a gateway went silent (or its LWT said so) / came back.
GATEWAY_OFFLINE = "gateway.offline"
GATEWAY_ONLINE = "gateway.online"
#: Ingest's offline check: what its gateway reports of a device changed — answering
#: again, unreachable, asleep (a PV device at night: no alarm) or faulty (it answers,
#: but with errors). One event per status the device enters.
DEVICE_ONLINE = "device.online"
DEVICE_OFFLINE = "device.offline"
DEVICE_ASLEEP = "device.asleep"
DEVICE_FAULTY = "device.faulty"
_DEVICE_EVENTS: dict[DeviceStatus, str] = {
    "online": DEVICE_ONLINE,
    "unreachable": DEVICE_OFFLINE,
    "asleep": DEVICE_ASLEEP,
    "faulty": DEVICE_FAULTY,
}


class GatewayPresence(BaseModel):
    """Payload of ``gateway.offline`` / ``gateway.online`` (``reason``: why offline)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    reason: str = ""
    last_message_at: datetime | None = None


class DevicePresence(BaseModel):
    """Payload of ``device.online`` / ``device.offline`` / ``device.asleep`` /
    ``device.faulty``: the status the device entered and the one announced before."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    device: str
    device_id: int | None = None
    status: DeviceStatus
    previous: DeviceStatus | None = None


def gateway_presence_event(
    region: Region | str, online: bool, presence: GatewayPresence, *, occurred_at: datetime
) -> Event:
    """``gateway.online`` / ``gateway.offline`` for ``presence``."""
    name = GATEWAY_ONLINE if online else GATEWAY_OFFLINE
    return _event(name, region, "ingest", presence, occurred_at=occurred_at)


def device_presence_event(
    region: Region | str, presence: DevicePresence, *, occurred_at: datetime
) -> Event:
    """The ``device.*`` event of the status ``presence`` entered."""
    name = _DEVICE_EVENTS[presence.status]
    return _event(name, region, "ingest", presence, occurred_at=occurred_at)


#: Ingest stored a batch of a gateway's telemetry (one event per gateway per batch).
TELEMETRY_RECEIVED = "telemetry.received"


class TelemetryReceived(BaseModel):
    """Payload of ``telemetry.received`` as its consumers read it: the gateway and the
    stored values of the metrics ingest announces (``POTR_INGEST_ANNOUNCED_METRICS``),
    each ``(local device id, metric, reading time, value)`` in time order — every sample
    of a gauge, a counter's newest value per device. Counts and stream positions travel
    beside them (ingest's bookkeeping, ignored here)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    samples: list[tuple[str, str, datetime, float]] = Field(default_factory=list)


#: Ingest closed a gateway's local day (its end plus a grace for late data): one event
#: per device and day, with the day's completeness (samples stored ÷ expected).
DEVICE_DAY_COMPLETENESS = "device.day_completeness"
#: Event ids of ``device.day_completeness``: one per (gateway, device, day), whoever
#: builds it, so closing a day again stores nothing new.
_DAY_COMPLETENESS_IDS = UUID("3f0b9a52-8f1e-5d57-b6a4-2c9d7e0f4a13")


class DeviceDayCompleteness(BaseModel):
    """Payload of ``device.day_completeness``: one device's whole local ``day`` in its
    site's ``time_zone`` (23 or 25 h across a DST change). ``expected`` samples come from
    the poll interval the gateway declared, over the whole day (a PV device asleep at
    night counts as missing); ``stored`` are the distinct sample timestamps ingest held
    when it closed the day; ``percent`` = 100 * min(stored, expected) / expected, None
    when nothing was expected (no poll interval known)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    #: The agent's local id of the device (as in :class:`DevicePresence`).
    device: str
    site_id: int | None
    day: date
    time_zone: str
    expected: int
    stored: int
    percent: float | None


def device_day_completeness_event(
    payload: DeviceDayCompleteness,
    region: Region | str,
    *,
    occurred_at: datetime,
    source: str = "ingest",
) -> Event:
    """``device.day_completeness`` for ``payload``, its id derived from (gateway, device,
    day); ``occurred_at``: when the day was closed."""
    key = f"{payload.gateway_id}/{payload.device}/{payload.day.isoformat()}"
    return _event(
        DEVICE_DAY_COMPLETENESS,
        region,
        source,
        payload,
        event_id=uuid5(_DAY_COMPLETENESS_IDS, key),
        occurred_at=occurred_at,
    )


def gateway_event_name(event: EventType) -> str:
    """The bus name ingest gives a gateway event of the catalogue: ``gateway.<event>``
    (``gateway.isolator_tripped``, ``gateway.data_dropped`` …)."""
    return f"gateway.{event.value}"


class GatewayEventReported(BaseModel):
    """Payload of ``gateway.<event>``: a gateway's event as ingest stored it. ``detail``
    is the wire detail; parse it with the event's model in :mod:`contracts.events`
    (``CATALOGUE[EventType(event)].detail``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    event: str
    severity: Literal["info", "warning", "critical"]
    device: str | None = None
    device_id: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    stream_id: UUID
    seq: int


#: Ingest allocated a key for a device a gateway reported outside any birth (telemetry
#: first): the registry records the device under that key until a birth describes it.
DEVICE_DISCOVERED = "device.discovered"


class DeviceDiscovered(BaseModel):
    """Payload of ``device.discovered``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    device: str
    device_id: int


#: The registry: a gateway was registered (emitted in the transaction that adds it).
GATEWAY_REGISTERED = "gateway.registered"
#: The registry: what ingest needs of a registered gateway changed (its site's time
#: zone …); the payload is the whole registration as it is now.
GATEWAY_UPDATED = "gateway.updated"


class GatewayRegistration(BaseModel):
    """Payload of ``gateway.registered`` / ``gateway.updated``: what ingest needs to
    accept a gateway's messages (its region, whether it is enabled) and to count its
    local days (its site's IANA time zone). Newest ``occurred_at`` wins at the consumer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_id: str
    site_id: int
    region: Region
    time_zone: str
    #: False once revoked. Events from before the flag existed lack it: enabled.
    enabled: bool = True
    #: The customer account that owns the site (issue 13), null while none does (and in
    #: events from before accounts existed).
    account_id: AccountId | None = None
    #: The site's name, as people read it in notices (null in older events).
    site_name: str | None = None
    #: The site's location, degrees (null while unknown, and in older events): where
    #: the sun is, for rules that mind daylight and the clear-sky expectation.
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    #: The site's network operator (distribution network), as the registry records it
    #: (null while unknown, and in older events): grid-code assignment by location.
    utility: str | None = None


def gateway_registration_event(
    registration: GatewayRegistration, *, registered: bool, source: str = "registry"
) -> Event:
    """``gateway.registered`` (``registered``) or ``gateway.updated`` for ``registration``."""
    name = GATEWAY_REGISTERED if registered else GATEWAY_UPDATED
    return _event(name, registration.region, source, registration)


#: The customers service: an account was created / changed (name, plan, status, email).
CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"


class CustomerAccount(BaseModel):
    """Payload of ``customer.created`` / ``customer.updated``: the account as it is now
    (billing fills in and follows ``plan_code``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    account_id: AccountId
    region: Region
    name: str
    email: str
    plan_code: str | None
    status: Literal["active", "suspended", "closed"]
    user_id: str | None = None


def customer_account_event(
    account: CustomerAccount, *, created: bool, source: str = "customers"
) -> Event:
    """``customer.created`` (``created``) or ``customer.updated`` for ``account``."""
    name = CUSTOMER_CREATED if created else CUSTOMER_UPDATED
    return _event(name, account.region, source, account)


#: The customers service: a site's billing meter was replaced. Billing closes the old
#: meter's register at ``old_register_kwh`` and opens the new one at ``new_register_kwh``,
#: so counter differences still add up exactly across the swap.
SITE_METER_REPLACED = "site.meter_replaced"


class MeterReplaced(BaseModel):
    """Payload of ``site.meter_replaced``; registers in kWh, exact decimals (strings in
    JSON)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    replacement_id: int
    site_id: int
    region: Region
    old_serial: str
    new_serial: str
    replaced_at: datetime
    old_register_kwh: Decimal
    new_register_kwh: Decimal


def meter_replaced_event(replaced: MeterReplaced, *, source: str = "customers") -> Event:
    """``site.meter_replaced`` for ``replaced`` (``occurred_at``: when it was replaced)."""
    return _event(
        SITE_METER_REPLACED, replaced.region, source, replaced, occurred_at=replaced.replaced_at
    )


#: The customers service recorded or replaced a site's installation record.
SITE_INSTALLATION_CHANGED = "site.installation_changed"


class InstallationChanged(BaseModel):
    """Payload of ``site.installation_changed``: the array and battery as installed
    (angles in degrees: tilt from horizontal, azimuth clockwise from true north) and the
    site's meters, as of ``updated_at`` (the newest wins at the consumer)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    site_id: int
    region: Region
    pv_kwp: Decimal
    tilt_deg: Decimal
    azimuth_deg: Decimal
    battery_kwh: Decimal
    updated_at: datetime
    #: PoTR's system meter (billing meter, at the system's AC output) and the site's
    #: grid-connection meter, by serial: site-level grid figures read the grid meter and
    #: never the system meter (null in events from before they were carried).
    billing_meter: str | None = Field(default=None, max_length=64)
    grid_meter: str | None = Field(default=None, max_length=64)


def installation_changed_event(changed: InstallationChanged, *, source: str = "customers") -> Event:
    """``site.installation_changed`` for ``changed`` (``occurred_at``: its update time)."""
    return _event(
        SITE_INSTALLATION_CHANGED, changed.region, source, changed, occurred_at=changed.updated_at
    )


ENERGY_REVISED = "energy.revised"


class EnergyRevised(BaseModel):
    """Payload of ``energy.revised``: local days of a site (in its zone) whose energy
    changed after they had ended — late data, a backfill — so billing trues them up."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    site_id: int
    days: list[date]


def energy_revised_event(
    revised: EnergyRevised,
    region: Region | str,
    *,
    occurred_at: datetime,
    source: str = "telemetry",
) -> Event:
    return _event(ENERGY_REVISED, region, source, revised, occurred_at=occurred_at)
