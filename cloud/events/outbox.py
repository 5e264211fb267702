"""Events between services: the model, the outbox (producers) and the inbox (consumers).

A producer calls :func:`emit` with the connection of the transaction that changes its
state, so the event is stored if and only if the change commits; the relay
(:mod:`cloud.events.relay`) publishes it on the bus later. A consumer calls
:func:`handle_once` in the transaction of its effect: delivery is at-least-once, the
effect happens once.

Every emitting service has ``<schema>.outbox`` and every consuming one ``<schema>.inbox``
(migrations ``cloud/<service>/schema/NNN_outbox.sql``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import to_jsonable_python

from cloud.adapters.postgres import Connection, Jsonb, sql
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = [
    "Event",
    "EventError",
    "emit",
    "emit_many",
    "handle_once",
    "routing_key",
]

#: ``telemetry.received``, ``gateway.birth``, ``device.offline`` …
EVENT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: A service (and its PostgreSQL schema): ``ingest``, ``registry`` …
SERVICE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class EventError(ValueError):
    """An event that cannot be stored or routed (bad name, payload not JSON-safe)."""


def _json_safe(value: Any, path: str = "payload") -> Any:
    """Refuse what PostgreSQL ``jsonb`` or strict JSON cannot hold: NaN/inf, U+0000,
    non-string keys."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EventError(f"{path}: {value} is not a finite number")
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise EventError(f"{path}: U+0000 is not allowed in a string")
        return value
    if isinstance(value, list):
        return [_json_safe(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise EventError(f"{path}: key {k!r} is not a string")
            if "\x00" in k:
                raise EventError(f"{path}: U+0000 is not allowed in a key")
            out[k] = _json_safe(v, f"{path}.{k}")
        return out
    raise EventError(f"{path}: {type(value).__name__} is not JSON")


def _to_json_types(value: Any) -> Any:
    # UUIDs, datetimes (ISO 8601), enums, models… become JSON types first.
    return to_jsonable_python(value)


def _check_name(value: str) -> str:
    if not EVENT_NAME_RE.match(value):
        raise EventError(f"event name {value!r} must look like 'gateway.birth'")
    return value


def _check_service(value: str) -> str:
    if not SERVICE_RE.match(value):
        raise EventError(f"service {value!r} must be lower_snake")
    return value


def _check_aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise EventError("occurred_at must be timezone-aware")
    return value


JsonPayload = Annotated[dict[str, Any], BeforeValidator(_to_json_types), AfterValidator(_json_safe)]


class Event(BaseModel):
    """Something that happened in one service, told to the others.

    ``name`` is ``<entity>.<what happened>`` (``gateway.birth``); ``source`` the emitting
    service; ``region`` where it happened; ``occurred_at`` when (aware, UTC preferred);
    ``payload`` JSON (UUIDs and datetimes given in it are stored as strings).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID = Field(default_factory=uuid4)
    name: Annotated[str, AfterValidator(_check_name)]
    region: Region
    source: Annotated[str, AfterValidator(_check_service)]
    occurred_at: Annotated[datetime, AfterValidator(_check_aware)] = Field(default_factory=utc_now)
    payload: JsonPayload = Field(default_factory=dict)

    @property
    def routing_key(self) -> str:
        return routing_key(self.region, self.source, self.name)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Event:
        return cls.model_validate_json(body)


def routing_key(region: Region | str, source: str, name: str) -> str:
    """``<region>.<service>.<event>``, e.g. ``au.ingest.gateway.birth``."""
    region_value = region.value if isinstance(region, Region) else region
    return f"{region_value}.{source}.{name}"


def _table(schema: str, table: str) -> sql.Composed:
    _check_service(schema)
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def emit(conn: Connection[Any], schema: str, event: Event) -> None:
    """Store ``event`` in ``<schema>.outbox`` within the caller's transaction.

    Emitting the same event (same id) twice stores it once.
    """
    emit_many(conn, schema, [event])


def emit_many(conn: Connection[Any], schema: str, events: Sequence[Event]) -> None:
    """:func:`emit` for several events, in their order, with one round trip."""
    if not events:
        return
    query = sql.SQL(
        "INSERT INTO {} (event_id, name, region, source, occurred_at, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"
    ).format(_table(schema, "outbox"))
    with conn.cursor() as cur:
        cur.executemany(query, list(_rows(events)))


def _rows(events: Iterable[Event]) -> Iterable[tuple[Any, ...]]:
    for e in events:
        yield (e.id, e.name, e.region.value, e.source, e.occurred_at, Jsonb(e.payload))


def handle_once(
    conn: Connection[Any], schema: str, event_id: UUID, *, table: str = "inbox"
) -> bool:
    """Record ``event_id`` in ``<schema>.<table>`` (``inbox`` unless the service uses
    that name for something else); True the first time, False after.

    Call it in the transaction of the effect and apply the effect only when True: a
    redelivered event then changes nothing, and a rolled-back effect leaves the event
    unrecorded, so its redelivery applies it.
    """
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {} (event_id) VALUES (%s) ON CONFLICT (event_id) DO NOTHING RETURNING 1"
        ).format(_table(schema, table)),
        (event_id,),
    ).fetchone()
    return row is not None
