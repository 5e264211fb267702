"""A virtual gateway's control side: verify and apply ``cmd``/``config`` like the agent.

Pure (no sockets, no clock: ``now`` is passed in). Verification is
:mod:`contracts.control` (signature on the raw document, schema, gateway id, expiry,
replay, version rules) and validation is :mod:`device_profiles.setpoints` (every value
against the device profile's limits), the same code the agent runs; this module only
decides what to answer. The "devices" are in-memory settings stores
(:class:`VirtualDevice`, point → value) with a builtin profile each.

Answers follow ``docs/control.md``:

* a command → ``cmd_ack`` ``rejected``/``expired`` with the refusal reason, or
  ``accepted`` then ``done`` (every write stored and read back) or ``failed``; a command
  without a parseable id cannot be answered (counted, dropped);
* a config → ``config_state``: applied (values written and read back per device),
  ``failed`` (validation refused it, it expired, or the gateway fails: nothing written,
  previous values kept, ``detail`` names the device and point), the last state again
  for the same version, or the last state with ``detail = "refused config: …"`` when it
  fails verification (forged, untrusted, other gateway, older version).

A *failing* gateway (failure injection) fails every config with settings and every
device command it accepts; gateway commands (``ping``, ``rescan``) still succeed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from contracts.control import (
    ConfigAction,
    ControlRefusal,
    RefusalCode,
    ReplayGuard,
    config_hash,
    verify_command,
    verify_config,
)
from contracts.messages import AckStatus, ConfigStatus
from contracts.signing import TrustedKeys
from device_profiles import DeviceProfile, builtin_profile
from device_profiles.setpoints import (
    SetpointRefusal,
    ValidatedSetting,
    validate_command,
    validate_config_devices,
    validate_settings,
)
from simulators.fleet.telemetry import (
    INVERTER_PROFILE,
    METER_PROFILE,
    device_ids,
    inverter_nameplate,
)

__all__ = [
    "AckAnswer",
    "GatewayControl",
    "StateAnswer",
    "VirtualDevice",
    "virtual_devices",
]

Value = float | tuple[float, ...]

#: Factory values of common settings (engineering units), where a profile has them;
#: anything else reads back as null until written.
FACTORY_VALUES: dict[str, float] = {
    "connect": 1,
    "power_limit_pct": 100,
    "power_limit_enable": 0,
    "pf_setpoint_enable": 0,
    "v_ref": 230,
    "volt_var_enable": 0,
    "volt_watt_enable": 0,
    "volt_var_curve": 1,
    "volt_watt_curve": 1,
}

#: Commands a gateway answers itself (``device: null``).
GATEWAY_COMMANDS = ("ping", "rescan")


def _shown(value: Value | None) -> Any:
    """A stored value as JSON: a number, a list for a curve, null if never set."""
    return list(value) if isinstance(value, tuple) else value


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass
class VirtualDevice:
    """One device of a virtual gateway: its profile, nameplate and settings (by point)."""

    device: str
    profile: DeviceProfile
    nameplate: dict[str, float] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)

    @classmethod
    def with_factory_values(
        cls, device: str, profile: DeviceProfile, nameplate: Mapping[str, float]
    ) -> VirtualDevice:
        """A device holding :data:`FACTORY_VALUES` (and ``w_max`` = its rating) where
        its profile has those settings and they pass the profile's limits."""
        dev = cls(device, profile, dict(nameplate))
        wanted: dict[str, float] = dict(FACTORY_VALUES)
        rating = nameplate.get("w_rtg", profile.nameplate.get("w_rtg"))
        if rating is not None:
            wanted["w_max"] = rating
        for name, value in wanted.items():
            if profile.setting(name) is None:
                continue
            try:
                (checked,) = validate_settings(profile, {name: value}, dev.nameplate)
            except SetpointRefusal:
                continue
            dev.values[checked.point] = checked.value
        return dev

    def read(self, point: str) -> Value | None:
        return self.values.get(point)

    def write(self, point: str, value: Value) -> None:
        self.values[point] = value


@dataclass(frozen=True, slots=True)
class AckAnswer:
    """A ``cmd_ack`` to send (the gateway adds stream, seq and time)."""

    id: UUID
    status: AckStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StateAnswer:
    """A ``config_state`` to send (the gateway adds stream, seq and time)."""

    version: int | None = None
    hash: str | None = None
    status: ConfigStatus = "pending"
    devices: dict[str, ConfigStatus] = field(default_factory=dict)
    points: dict[str, dict[str, Any]] = field(default_factory=dict)
    drift: list[str] = field(default_factory=list)
    detail: str = ""

    def fields(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "hash": self.hash,
            "status": self.status,
            "devices": dict(self.devices),
            "points": {d: dict(p) for d, p in self.points.items()},
            "drift": list(self.drift),
            "detail": self.detail,
        }


class GatewayControl:
    """What one virtual gateway does with the ``cmd`` and ``config`` it receives.

    ``devices`` are its devices by local id; ``fails`` injects a failure into every
    config with settings and every device command it accepts. Seen command ids are kept
    in memory (a :class:`~contracts.control.ReplayGuard`) for the gateway's lifetime.
    """

    def __init__(
        self,
        gateway_id: str,
        devices: Iterable[VirtualDevice],
        trusted: TrustedKeys,
        *,
        fails: bool = False,
        replay_capacity: int = 10_000,
    ) -> None:
        self.gateway_id = gateway_id
        self.devices = {d.device: d for d in devices}
        self.trusted = trusted
        self.fails = fails
        self.guard = ReplayGuard(replay_capacity)
        #: The state of the last *handled* config (what an equal version re-reports).
        self.handled = StateAnswer()
        self._handled_payload: bytes | None = None
        self._profiles = {d.device: d.profile for d in self.devices.values()}
        self._nameplates = {d.device: d.nameplate for d in self.devices.values()}

    @property
    def config_version(self) -> int | None:
        return self.handled.version

    # ----- commands -------------------------------------------------------------------
    def on_command(self, payload: bytes, now: datetime) -> list[AckAnswer]:
        """The acks for one received ``cmd`` payload (empty: it has no id to answer)."""
        try:
            raw = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return []
        try:
            cmd = verify_command(
                raw, gateway_id=self.gateway_id, trusted=self.trusted, now=now, seen=self.guard
            )
        except ControlRefusal as exc:
            if exc.document_id is None:
                return []
            return [AckAnswer(exc.document_id, exc.status, exc.reason)]
        if cmd.device is None:
            return self._gateway_command(cmd.id, cmd.name, cmd.args)
        dev = self.devices.get(cmd.device)
        if dev is None:
            return [
                AckAnswer(
                    cmd.id,
                    AckStatus.REJECTED,
                    f"unknown device: {cmd.device!r} is not a device of {self.gateway_id}",
                )
            ]
        if dev.profile.command(cmd.name) is None:
            known = ", ".join(c.name for c in dev.profile.commands) or "none"
            return [
                AckAnswer(
                    cmd.id,
                    AckStatus.REJECTED,
                    f"unknown command: {dev.profile.name} has no command {cmd.name!r}"
                    f" (it has: {known})",
                )
            ]
        try:
            checked = validate_command(dev.profile, cmd.name, cmd.args, dev.nameplate)
        except SetpointRefusal as exc:
            return [AckAnswer(cmd.id, AckStatus.REJECTED, str(exc))]
        accepted = AckAnswer(cmd.id, AckStatus.ACCEPTED)
        if self.fails:
            point = checked.writes[0].point
            detail = f"{dev.device} {point}: write failed (injected failure); previous values kept"
            return [accepted, AckAnswer(cmd.id, AckStatus.FAILED, detail)]
        for write in checked.writes:
            dev.write(write.point, write.value)
        read_back = ", ".join(
            f"{w.point}={_fmt(v)}"
            for w in checked.writes
            if isinstance(v := dev.read(w.point), float | int)
        )
        return [accepted, AckAnswer(cmd.id, AckStatus.DONE, f"read back {read_back}")]

    def _gateway_command(self, cid: UUID, name: str, args: Mapping[str, Any]) -> list[AckAnswer]:
        if name not in GATEWAY_COMMANDS:
            return [
                AckAnswer(
                    cid,
                    AckStatus.REJECTED,
                    f"unknown command: gateway commands are {', '.join(GATEWAY_COMMANDS)},"
                    f" not {name!r}",
                )
            ]
        if args:
            first = sorted(str(k) for k in args)[0]
            return [AckAnswer(cid, AckStatus.REJECTED, f"args.{first}: {name} takes no arguments")]
        detail = "pong" if name == "ping" else f"rescan scheduled ({len(self.devices)} devices)"
        return [AckAnswer(cid, AckStatus.ACCEPTED), AckAnswer(cid, AckStatus.DONE, detail)]

    # ----- configs --------------------------------------------------------------------
    def on_config(self, payload: bytes, now: datetime) -> StateAnswer | None:
        """The ``config_state`` for one received ``config`` payload (None: an empty
        payload, i.e. the retained config was cleared)."""
        if not payload:
            return None
        if payload == self._handled_payload:
            # The handled document again (e.g. the retained config on a resubscribe):
            # verification would say "equal version", so re-report without redoing it.
            return self.handled
        try:
            raw = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            return self._refused(f"{RefusalCode.SCHEMA_INVALID.value}: not JSON: {exc}")
        try:
            verdict = verify_config(
                raw,
                gateway_id=self.gateway_id,
                trusted=self.trusted,
                now=now,
                applied_version=self.handled.version,
                applied_hash=self.handled.hash,
            )
        except ControlRefusal as exc:
            if exc.code is RefusalCode.EXPIRED:
                # Signed, well-formed, ours and newer, but past not_after: handled,
                # nothing written (its version is reported failed).
                return self._handle(payload, self._refused_doc(raw, exc.reason))
            return self._refused(exc.reason)
        if verdict.action is ConfigAction.REREPORT:
            self._handled_payload = payload
            return self.handled
        doc = verdict.doc
        digest = config_hash(raw)
        try:
            checked = validate_config_devices(doc.devices, self._profiles, self._nameplates)
        except SetpointRefusal as exc:
            return self._handle(
                payload,
                StateAnswer(
                    doc.version,
                    digest,
                    "failed",
                    dict.fromkeys(doc.devices, "failed"),
                    detail=str(exc),
                ),
            )
        return self._handle(payload, self._apply(doc.version, digest, checked))

    def _apply(
        self, version: int, digest: str, checked: dict[str, list[ValidatedSetting]]
    ) -> StateAnswer:
        devices: dict[str, ConfigStatus] = {}
        failures: list[str] = []
        for device, settings in checked.items():
            dev = self.devices[device]
            if self.fails and settings:
                first = settings[0]
                devices[device] = "failed"
                failures.append(
                    f"{device}.{first.name} ({first.point}): write failed (injected failure);"
                    " previous values restored"
                )
                continue
            for item in settings:
                dev.write(item.point, item.value)
            devices[device] = "applied"
        points = {
            device: {s.name: _shown(self.devices[device].read(s.point)) for s in settings}
            for device, settings in checked.items()
        }
        status: ConfigStatus = "failed" if failures else "applied"
        return StateAnswer(version, digest, status, devices, points, [], "; ".join(failures))

    def _refused_doc(self, raw: Mapping[str, Any], reason: str) -> StateAnswer:
        """A verified document that is handled but not applied (expired)."""
        devices = raw.get("devices")
        names = [d for d in devices if isinstance(d, str)] if isinstance(devices, Mapping) else []
        version = raw.get("version")
        return StateAnswer(
            version if isinstance(version, int) else None,
            config_hash(raw),
            "failed",
            dict.fromkeys(names, "failed"),
            detail=reason,
        )

    def _handle(self, payload: bytes, state: StateAnswer) -> StateAnswer:
        self.handled = state
        self._handled_payload = payload
        return state

    def _refused(self, reason: str) -> StateAnswer:
        """The last handled state again, with why this document moved nothing."""
        return dataclasses.replace(self.handled, detail=f"refused config: {reason}")


def virtual_devices(gateway_id: str, capacity_w: float) -> list[VirtualDevice]:
    """A virtual gateway's devices (as its birth announces them), with factory values."""
    ids = device_ids(gateway_id)
    return [
        VirtualDevice.with_factory_values(
            ids.inverter, builtin_profile(INVERTER_PROFILE), inverter_nameplate(capacity_w)
        ),
        VirtualDevice.with_factory_values(ids.meter, builtin_profile(METER_PROFILE), {}),
    ]
