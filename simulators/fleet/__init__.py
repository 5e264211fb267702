"""Virtual gateways speaking the MQTT contract directly, for broker and ingest load.

Each virtual gateway has its own MQTT connection and identity (client id and username =
gateway id), the light site model of :mod:`simulators.fleet.telemetry`, and the
stream/seq/``stored`` bookkeeping of :mod:`contracts` (birth, retained state with an
offline will, telemetry batches at a cadence, resends of what ``stored`` has not
covered). Pure parts:
:mod:`~simulators.fleet.spec`, :mod:`~simulators.fleet.gateway`,
:mod:`~simulators.fleet.telemetry`, :mod:`~simulators.fleet.stats`; the only paho module
is :mod:`~simulators.fleet.mqtt_paho`, driven by :mod:`~simulators.fleet.worker`.
Signed ``cmd``/``config`` documents are verified, applied to in-memory devices and
answered by :mod:`~simulators.fleet.control` (the agent's verification and validation
code from :mod:`contracts.control` and :mod:`device_profiles.setpoints`).
"""

from simulators.fleet.runner import FleetProgress, FleetResult, run_fleet
from simulators.fleet.spec import (
    FleetSpec,
    GatewayPlan,
    MqttTarget,
    Outage,
    failing_gateways,
    gateway_id,
    parse_region_mix,
    plan,
)
from simulators.fleet.stats import LatencyHistogram, WorkerStats, most_in_window

__all__ = [
    "FleetProgress",
    "FleetResult",
    "FleetSpec",
    "GatewayPlan",
    "LatencyHistogram",
    "MqttTarget",
    "Outage",
    "WorkerStats",
    "failing_gateways",
    "gateway_id",
    "most_in_window",
    "parse_region_mix",
    "plan",
    "run_fleet",
]
