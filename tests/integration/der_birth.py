"""The birth of a gateway with one SunSpec DER inverter (models 701-711, the simulator's
``sim-der-inverter``), as the config service consumes it: what grid-code pushes and
site profiles need to know about a gateway's devices."""

from __future__ import annotations

import uuid

from cloud.events.types import GatewayBirth
from contracts.messages import DeviceInfo

__all__ = ["der_inverter_birth"]

DER_MODELS = [1, 701, 702, 703, 704, 705, 706, 707, 708, 709, 710, 711]


def der_inverter_birth(gateway_id: str, device: str, *, boot_id: str = "boot-1") -> GatewayBirth:
    """``gateway_id``'s birth with DER inverter ``device`` on unit 1."""
    return GatewayBirth(
        gateway_id=gateway_id,
        stream_id=uuid.uuid4(),
        boot_id=boot_id,
        agent_version="test",
        publish_interval_s=5,
        devices=[
            DeviceInfo(
                device=device,
                endpoint="127.0.0.1:15020",
                unit_id=1,
                models=DER_MODELS,
                profile="sim-der-inverter",
                nameplate={"w_rtg": 5000.0, "va_rtg": 5000.0, "var_rtg": 3000.0},
            )
        ],
    )
