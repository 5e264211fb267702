"""The events services exchange: names and payload models, shared by producer and consumer.

A producer builds the :class:`~cloud.common.events.Event` with a helper here; a consumer
parses ``event.payload`` with the same model, so neither imports the other service.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from cloud.common.events import Event
from contracts.messages import DeviceInfo
from contracts.topics import Region

__all__ = ["GATEWAY_BIRTH", "GatewayBirth", "gateway_birth_event"]

#: Ingest saw a gateway's ``birth``: its devices (the registry upserts them).
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


def gateway_birth_event(
    region: Region | str,
    birth: GatewayBirth,
    *,
    occurred_at: datetime | None = None,
    source: str = "ingest",
) -> Event:
    """The ``gateway.birth`` event for ``birth`` (``occurred_at`` defaults to now)."""
    fields: dict[str, object] = {
        "name": GATEWAY_BIRTH,
        "region": region,
        "source": source,
        "payload": birth.model_dump(mode="json"),
    }
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    return Event.model_validate(fields)
