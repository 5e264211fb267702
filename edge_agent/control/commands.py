"""Signed commands: verified, validated, checked against the device's state, written,
read back, answered (``docs/control.md``, "Commands").

Before any write the command's declared effect and preconditions are read
(:mod:`device_profiles.applicability`): an effect that already shows is ``done`` and a
command that does not apply is ``rejected``, both at once and with nothing written.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import orjson

from contracts.control import (
    ControlRefusal,
    RefusalCode,
    ReplayGuard,
    document_id,
    verify_command,
)
from contracts.messages import AckStatus, CommandMsg
from contracts.signing import TrustedKeys
from contracts.timeutil import utc_now
from device_profiles.applicability import Applicability, decide_command, state_points
from device_profiles.schema import Command, DeviceProfile
from device_profiles.setpoints import (
    SetpointRefusal,
    ValidatedCommand,
    device_nameplate,
    validate_command,
)
from edge_agent.control.answers import Answers
from edge_agent.control.devices import Devices
from edge_agent.control.stats import ControlStats
from edge_agent.control_store import ControlStore
from edge_agent.device_writer import DeviceWriter, WriteFailed
from edge_agent.settings import AgentSettings

__all__ = ["Commands"]

log = logging.getLogger(__name__)


class Commands:
    def __init__(
        self,
        settings: AgentSettings,
        store: ControlStore,
        guard: ReplayGuard,
        trusted: TrustedKeys,
        devices: Devices,
        answers: Answers,
        stats: ControlStats,
    ) -> None:
        self._s = settings
        self._store = store
        self._guard = guard
        self._trusted = trusted
        self._devices = devices
        self._answers = answers
        self._stats = stats

    async def handle(self, payload: bytes) -> None:
        command = await self._verified(payload)
        if command is None:
            return
        if command.device is None:
            await self._gateway_command(command)
        else:
            await self._device_command(command)

    async def _verified(self, payload: bytes) -> CommandMsg | None:
        """The verified command (its id recorded as seen), or None once answered."""
        try:
            raw: Any = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            refusal = ControlRefusal(
                AckStatus.REJECTED,
                f"schema-invalid: not JSON: {exc}",
                code=RefusalCode.SCHEMA_INVALID,
            )
            self._answers.refused("command", refusal, "<unparseable>")
            return None
        try:
            return await self._store.io(
                lambda: verify_command(
                    raw,
                    gateway_id=self._s.gateway_id,
                    trusted=self._trusted,
                    now=utc_now(),
                    seen=self._guard,
                )
            )
        except ControlRefusal as exc:
            reason = self._answers.refused("command", exc, exc.document_id or "<no id>")
            if exc.document_id is not None:
                await self._answers.ack(exc.document_id, exc.status, reason)
        except sqlite3.OperationalError as exc:
            # Verified, but its id could not be recorded durably (a full disk): executing
            # it could let a replay through after a restart, so it is refused. Recording
            # is the guard's last step, so the id read here is the signed one.
            command_id = document_id(raw)
            self._stats.refusals["seen store"] += 1
            log.error(
                "gateway %s: command %s not recorded: %s", self._s.gateway_id, command_id, exc
            )
            if command_id is not None:
                await self._answers.ack(
                    command_id, AckStatus.REJECTED, f"not recorded: the seen-id store: {exc}"
                )
        return None

    async def _gateway_command(self, command: CommandMsg) -> None:
        pollers = self._devices.pollers
        if command.name == "ping":
            await self._answers.ack(command.id, AckStatus.DONE, "pong")
        elif command.name == "rescan":
            for poller in pollers:
                poller.rediscover()
            log.info("gateway %s: rescan of %d devices", self._s.gateway_id, len(pollers))
            await self._answers.ack(
                command.id, AckStatus.DONE, f"rescan of {len(pollers)} devices scheduled"
            )
        else:
            await self._answers.reject(
                command.id,
                "unknown command",
                f"unknown command: the gateway has no command {command.name!r}",
            )

    async def _device_command(self, command: CommandMsg) -> None:
        target = await self._target(command)
        if target is None:
            return
        profile, command_def, checked, writer = target
        if not await self._applies(command, profile, command_def, writer):
            return
        try:
            await writer.precheck({w.point: w.value for w in checked.writes})
        except WriteFailed as exc:
            await self._answers.reject(command.id, "encoding", f"not written: {exc}")
            return
        await self._execute(command, command_def, checked, writer)

    async def _target(
        self, command: CommandMsg
    ) -> tuple[DeviceProfile, Command, ValidatedCommand, DeviceWriter] | None:
        """The device's profile, the command's definition, its validated writes and a
        writer; None once refused."""
        device = command.device or ""
        poller = self._devices.poller(device)
        if poller is None or poller.state.info is None:
            reason = f"unknown device: {device!r} is not on this gateway"
            await self._answers.reject(command.id, "unknown device", reason)
            return None
        profile = poller.profile
        if profile is None:
            reason = f"no profile: device {device!r} has no device profile"
            await self._answers.reject(command.id, "no profile", reason)
            return None
        command_def = profile.command(command.name)
        if command_def is None:
            reason = f"unknown command: {profile.name} has no command {command.name!r}"
            await self._answers.reject(command.id, "unknown command", reason)
            return None
        nameplate = device_nameplate(poller.state.info.nameplate)
        try:
            checked = validate_command(profile, command.name, command.args, nameplate)
        except SetpointRefusal as exc:
            await self._answers.reject(command.id, "setpoint", str(exc))
            return None
        writer = self._devices.writer(poller, profile)
        if writer is None:
            reason = f"unknown device: {device!r} is {poller.state.status}, not discovered"
            await self._answers.reject(command.id, "unknown device", reason)
            return None
        return profile, command_def, checked, writer

    async def _applies(
        self,
        command: CommandMsg,
        profile: DeviceProfile,
        command_def: Command,
        writer: DeviceWriter,
    ) -> bool:
        """Read the command's declared effect and preconditions; answer at once, with
        nothing written, when the effect already shows or a precondition fails."""
        try:
            state = {ref: await writer.read_scalar(ref) for ref in state_points(command_def)}
        except WriteFailed as exc:
            reason = f"not written: state unreadable: {exc}"
            await self._answers.reject(command.id, "state unreadable", reason)
            return False
        decision = decide_command(profile, command_def, state)
        if decision.applicability is Applicability.NOT_APPLICABLE:
            await self._answers.reject(command.id, "not applicable", decision.detail)
            return False
        if decision.applicability is Applicability.IN_EFFECT:
            log.info("gateway %s: command %s: %s", self._s.gateway_id, command.id, decision.detail)
            await self._answers.ack(command.id, AckStatus.DONE, decision.detail)
            return False
        return True

    async def _execute(
        self,
        command: CommandMsg,
        command_def: Command,
        checked: ValidatedCommand,
        writer: DeviceWriter,
    ) -> None:
        """Write, read back, wait for the declared effects; answer done or failed."""
        await self._store.io(self._store.begin, command.id, command.device or "", command.name)
        await self._answers.ack(command.id, AckStatus.ACCEPTED, "")
        try:
            for write in checked.writes:
                await writer.write_scalar(write.point, write.value)
            read_back = [
                f"{w.point}={await writer.check_scalar(w.point, w.value):g}" for w in checked.writes
            ]
            for effect in command_def.expect:
                shown = await writer.await_effect(
                    effect.point, effect.value, self._s.command_effect_timeout_s
                )
                read_back.append(f"{effect.point}={shown:g}")
        except WriteFailed as exc:
            log.warning("gateway %s: command %s failed: %s", self._s.gateway_id, command.id, exc)
            await self._answers.ack(command.id, AckStatus.FAILED, str(exc))
        else:
            log.info(
                "gateway %s: command %s %s on %s done",
                self._s.gateway_id,
                command.id,
                command.name,
                command.device,
            )
            await self._answers.ack(command.id, AckStatus.DONE, "read back " + ", ".join(read_back))
        # After the final ack is buffered: a crash in between repeats the answer, never
        # loses it (the cloud keeps the first final status).
        await self._store.io(self._store.finish, command.id)

    async def report_interrupted(self) -> None:
        """Commands a previous run accepted but never finished (power cut, kill -9 between
        the writes and the final ack): answered ``failed``, since what the device holds
        is unknown; a redelivered copy is refused as replayed, so it never runs twice."""
        for command_id, device, name in await self._store.io(self._store.inflight):
            self._stats.refusals["interrupted"] += 1
            log.error(
                "gateway %s: command %s (%s on %s) was interrupted by a restart",
                self._s.gateway_id,
                command_id,
                name,
                device,
            )
            await self._answers.ack(
                command_id,
                AckStatus.FAILED,
                f"interrupted: the agent stopped while executing {name} on {device};"
                " the device may hold part of it: read it back before retrying",
            )
            await self._store.io(self._store.finish, command_id)
