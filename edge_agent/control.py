"""The control task: signed commands and configs from the cloud, applied one at a time.

The publisher hands every raw ``cmd``/``config`` payload (bytes, verified here on the
raw mapping) to :meth:`ControlService.submit`; a bounded queue feeds one task, so a
slow write never blocks the poll loop or the MQTT session, and a full queue answers
"busy". See ``docs/control.md`` for what every answer means. Nothing is written to a
device unless the document passed :mod:`contracts.control` and every value passed
:mod:`device_profiles.setpoints`; acks and ``config_state`` go through the buffer.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import orjson
from pydantic import ValidationError

from contracts.control import (
    ConfigAction,
    ControlRefusal,
    RefusalCode,
    ReplayGuard,
    config_hash,
    document_id,
    verify_command,
    verify_config,
)
from contracts.messages import AckStatus, CmdAck, CommandMsg, ConfigDoc, ConfigState
from contracts.signing import TrustedKeys
from contracts.timeutil import utc_now
from device_profiles.applicability import Applicability, decide_command, state_points
from device_profiles.schema import Command, DeviceProfile
from device_profiles.setpoints import (
    SetpointRefusal,
    ValidatedSetting,
    device_nameplate,
    validate_command,
    validate_config_devices,
)
from edge_agent.buffer import AsyncOutbox, BufferFullError, PayloadFactory
from edge_agent.config_report import (
    applied_body,
    drift_body,
    failed_body,
    refused_body,
    setting_for_point,
    to_json_value,
)
from edge_agent.control_store import ControlStore, HandledConfig
from edge_agent.device_writer import DeviceWriter, SettingValue, WriteFailed, limit_guard
from edge_agent.poller import DevicePoller, DeviceRegistry
from edge_agent.settings import AgentSettings

__all__ = ["ControlService", "ControlStats"]

log = logging.getLogger(__name__)

EventSink = Callable[[str, str, str | None, dict[str, Any]], Awaitable[None]]


class ControlStats:
    """Counters for ``/metrics``: commands and configs by outcome, refusals by code,
    Modbus writes by outcome."""

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()
        self.configs: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()


class ControlService:
    def __init__(
        self,
        settings: AgentSettings,
        outbox: AsyncOutbox,
        wake: asyncio.Event,
        pollers: Sequence[DevicePoller],
        emit_event: EventSink,
        store: ControlStore,
        trusted: TrustedKeys,
        registry: DeviceRegistry,
    ) -> None:
        self._s = settings
        self._registry = registry
        self._outbox = outbox
        self._wake = wake
        self._pollers = list(pollers)
        self._emit = emit_event
        self._store = store
        self._trusted = trusted
        self.stats = ControlStats()
        #: Answers a full disk could not buffer yet (kind, payload factory).
        self._unbuffered: deque[tuple[str, PayloadFactory]] = deque(maxlen=1000)
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(settings.control_queue_size)
        self._lock = asyncio.Lock()
        self._guard = ReplayGuard(
            settings.replay_capacity,
            max_lifetime=timedelta(seconds=settings.command_max_lifetime_s),
            seen=store.seen(),
            store=store,
        )
        handled = store.handled()
        self._handled: HandledConfig | None = handled
        self._drift: list[str] = list(handled.state.get("drift", [])) if handled else []
        if not trusted.kids():
            log.warning(
                "gateway %s: no trusted keys: every cmd/config is refused", settings.gateway_id
            )

    @property
    def config_version(self) -> int | None:
        """The last handled config version (``birth``'s ``config_version``)."""
        return self._handled.version if self._handled else None

    # ----- intake -----------------------------------------------------------------------
    async def submit(self, kind: str, payload: bytes) -> None:
        """Queue a raw ``cmd``/``config``; a full queue answers "busy" at once."""
        try:
            self._queue.put_nowait((kind, payload))
        except asyncio.QueueFull:
            await self._refuse_busy(kind, payload)

    async def _refuse_busy(self, kind: str, payload: bytes) -> None:
        reason = f"busy: {self._queue.qsize()} control documents are waiting"
        self.stats.refusals["busy"] += 1
        if kind == "config":
            log.warning("gateway %s: config refused: %s", self._s.gateway_id, reason)
            await self._publish_state(refused_body(self._handled_state(), reason))
            return
        # No ack: the id of an unverified payload cannot be trusted (a redelivered copy
        # of a queued command, or a forgery, would close the genuine one as rejected).
        # The cloud sees no final ack and expires the command: visible, never wrong.
        log.error(
            "gateway %s: command %s dropped unanswered: %s",
            self._s.gateway_id,
            _payload_id(payload),
            reason,
        )

    async def run(self) -> None:
        """Handle queued documents one at a time; check drift every interval."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._drift_loop())
            await self._report_interrupted()
            await self._first_discovery()
            while True:
                kind, payload = await self._queue.get()
                async with self._lock:
                    try:
                        if kind == "cmd":
                            await self.handle_command(payload)
                        else:
                            await self.handle_config(payload)
                    except Exception:
                        log.exception("gateway %s: %s not handled", self._s.gateway_id, kind)

    async def _first_discovery(self) -> None:
        """Hold documents until every device was tried once (bounded): a command or the
        retained config arriving right after a (re)start must not find its device
        "unknown" only because discovery has not run yet."""
        if all(p.state.attempted for p in self._pollers):
            return  # nothing to discover (no devices), or already done
        try:
            async with asyncio.timeout(self._s.control_discovery_wait_s):
                await self._registry.first_round.wait()
        except TimeoutError:
            log.warning(
                "gateway %s: devices not all tried within %.0fs; handling documents anyway",
                self._s.gateway_id,
                self._s.control_discovery_wait_s,
            )

    # ----- answers ----------------------------------------------------------------------
    async def _ack(self, command_id: UUID, status: AckStatus, detail: str) -> None:
        self.stats.commands[status.value] += 1
        ts = utc_now()

        def make(stream_id: UUID, seq: int) -> bytes:
            return CmdAck(
                stream_id=stream_id,
                seq=seq,
                id=command_id,
                status=status,
                detail=detail.replace("\x00", "?")[:2000],
                ts=ts,
            ).to_json()

        await self._append("cmd_ack", make)

    async def _publish_state(self, body: Mapping[str, Any]) -> None:
        self.stats.configs[str(body.get("status"))] += 1
        ts = utc_now()
        body = {**body, "detail": str(body.get("detail", "")).replace("\x00", "?")[:4000]}

        def make(stream_id: UUID, seq: int) -> bytes:
            return ConfigState.model_validate(
                {**body, "stream_id": stream_id, "seq": seq, "ts": ts}
            ).to_json()

        await self._append("config_state", make)

    async def _append(self, kind: str, make: PayloadFactory) -> None:
        """Buffer an answer; on a full disk keep it in memory (bounded) and buffer it
        once space returns: acks and config states are never dropped for lack of disk."""
        await self.flush_unbuffered()
        try:
            await self._outbox.append(kind, make)
        except BufferFullError as exc:
            if len(self._unbuffered) == self._unbuffered.maxlen:
                log.error("gateway %s: oldest unbuffered answer lost", self._s.gateway_id)
            self._unbuffered.append((kind, make))
            log.error("gateway %s: %s kept in memory: %s", self._s.gateway_id, kind, exc)
            return
        self._wake.set()

    async def flush_unbuffered(self) -> None:
        """Buffer answers a full disk kept in memory, oldest first."""
        while self._unbuffered:
            kind, make = self._unbuffered[0]
            try:
                await self._outbox.append(kind, make)
            except BufferFullError:
                return
            self._unbuffered.popleft()
            self._wake.set()

    def _refused(self, what: str, refusal: ControlRefusal | SetpointRefusal, ident: object) -> str:
        code = refusal.code.value if isinstance(refusal, ControlRefusal) else "setpoint"
        reason = refusal.reason if isinstance(refusal, ControlRefusal) else str(refusal)
        self.stats.refusals[code] += 1
        log.warning("gateway %s: %s %s refused: %s", self._s.gateway_id, what, ident, reason)
        return reason

    # ----- commands ---------------------------------------------------------------------
    async def handle_command(self, payload: bytes) -> None:
        try:
            raw: Any = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raw = None
            refusal = ControlRefusal(
                AckStatus.REJECTED,
                f"schema-invalid: not JSON: {exc}",
                code=RefusalCode.SCHEMA_INVALID,
            )
            self._refused("command", refusal, "<unparseable>")
            return
        try:
            command = await self._store.io(
                lambda: verify_command(
                    raw,
                    gateway_id=self._s.gateway_id,
                    trusted=self._trusted,
                    now=utc_now(),
                    seen=self._guard,
                )
            )
        except ControlRefusal as exc:
            reason = self._refused("command", exc, exc.document_id or "<no id>")
            if exc.document_id is not None:
                await self._ack(exc.document_id, exc.status, reason)
            return
        except sqlite3.OperationalError as exc:
            # Verified, but its id could not be recorded durably (a full disk): executing
            # it could let a replay through after a restart, so it is refused. Recording
            # is the guard's last step, so the id read here is the signed one.
            command_id = document_id(raw)
            self.stats.refusals["seen store"] += 1
            log.error(
                "gateway %s: command %s not recorded: %s", self._s.gateway_id, command_id, exc
            )
            if command_id is not None:
                await self._ack(
                    command_id, AckStatus.REJECTED, f"not recorded: the seen-id store: {exc}"
                )
            return
        if command.device is None:
            await self._gateway_command(command)
            return
        await self._device_command(command)

    async def _gateway_command(self, command: CommandMsg) -> None:
        if command.name == "ping":
            await self._ack(command.id, AckStatus.DONE, "pong")
        elif command.name == "rescan":
            for poller in self._pollers:
                poller.rediscover()
            log.info("gateway %s: rescan of %d devices", self._s.gateway_id, len(self._pollers))
            await self._ack(
                command.id, AckStatus.DONE, f"rescan of {len(self._pollers)} devices scheduled"
            )
        else:
            reason = f"unknown command: the gateway has no command {command.name!r}"
            self.stats.refusals["unknown command"] += 1
            log.warning(
                "gateway %s: command %s refused: %s", self._s.gateway_id, command.id, reason
            )
            await self._ack(command.id, AckStatus.REJECTED, reason)

    def _poller(self, device: str) -> DevicePoller | None:
        return next((p for p in self._pollers if p.state.device_id == device), None)

    def _writer(self, poller: DevicePoller, profile: DeviceProfile) -> DeviceWriter | None:
        blocks = poller.model_blocks()
        if blocks is None:
            return None
        nameplate = device_nameplate(poller.state.info.nameplate if poller.state.info else {})
        return DeviceWriter(
            poller.endpoint,
            poller.unit_id,
            profile,
            blocks,
            guard=limit_guard(profile, nameplate),
            adopt_timeout_s=self._s.curve_adopt_timeout_s,
            on_write=lambda outcome: self.stats.writes.update([outcome]),
        )

    async def _reject(self, command: CommandMsg, code: str, reason: str) -> None:
        self.stats.refusals[code] += 1
        log.warning("gateway %s: command %s refused: %s", self._s.gateway_id, command.id, reason)
        await self._ack(command.id, AckStatus.REJECTED, reason)

    async def _device_command(self, command: CommandMsg) -> None:
        device = command.device or ""
        poller = self._poller(device)
        if poller is None or poller.state.info is None:
            await self._reject(
                command, "unknown device", f"unknown device: {device!r} is not on this gateway"
            )
            return
        profile = poller.profile
        if profile is None:
            await self._reject(
                command, "no profile", f"no profile: device {device!r} has no device profile"
            )
            return
        if profile.command(command.name) is None:
            await self._reject(
                command,
                "unknown command",
                f"unknown command: {profile.name} has no command {command.name!r}",
            )
            return
        nameplate = device_nameplate(poller.state.info.nameplate)
        try:
            checked = validate_command(profile, command.name, command.args, nameplate)
        except SetpointRefusal as exc:
            await self._reject(command, "setpoint", str(exc))
            return
        writer = self._writer(poller, profile)
        if writer is None:
            await self._reject(
                command,
                "unknown device",
                f"unknown device: {device!r} is {poller.state.status}, not discovered",
            )
            return
        command_def = profile.command(command.name)
        assert command_def is not None
        if not await self._applies(command, profile, command_def, writer):
            return
        try:
            await writer.precheck({w.point: w.value for w in checked.writes})
        except WriteFailed as exc:
            await self._reject(command, "encoding", f"not written: {exc}")
            return
        await self._store.io(self._store.begin, command.id, device, command.name)
        await self._ack(command.id, AckStatus.ACCEPTED, "")
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
            await self._ack(command.id, AckStatus.FAILED, str(exc))
        else:
            log.info(
                "gateway %s: command %s %s on %s done",
                self._s.gateway_id,
                command.id,
                command.name,
                device,
            )
            await self._ack(command.id, AckStatus.DONE, "read back " + ", ".join(read_back))
        # After the final ack is buffered: a crash in between repeats the answer, never
        # loses it (the cloud keeps the first final status).
        await self._store.io(self._store.finish, command.id)

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
            await self._reject(command, "state unreadable", f"not written: state unreadable: {exc}")
            return False
        decision = decide_command(profile, command_def, state)
        if decision.applicability is Applicability.NOT_APPLICABLE:
            await self._reject(command, "not applicable", decision.detail)
            return False
        if decision.applicability is Applicability.IN_EFFECT:
            log.info("gateway %s: command %s: %s", self._s.gateway_id, command.id, decision.detail)
            await self._ack(command.id, AckStatus.DONE, decision.detail)
            return False
        return True

    async def _report_interrupted(self) -> None:
        """Commands a previous run accepted but never finished (power cut, kill -9 between
        the writes and the final ack): answered ``failed``, since what the device holds
        is unknown; a redelivered copy is refused as replayed, so it never runs twice."""
        for command_id, device, name in await self._store.io(self._store.inflight):
            self.stats.refusals["interrupted"] += 1
            log.error(
                "gateway %s: command %s (%s on %s) was interrupted by a restart",
                self._s.gateway_id,
                command_id,
                name,
                device,
            )
            await self._ack(
                command_id,
                AckStatus.FAILED,
                f"interrupted: the agent stopped while executing {name} on {device};"
                " the device may hold part of it: read it back before retrying",
            )
            await self._store.io(self._store.finish, command_id)

    # ----- configs ----------------------------------------------------------------------
    def _handled_state(self) -> dict[str, Any] | None:
        return dict(self._handled.state) if self._handled else None

    async def _save(self, handled: HandledConfig, effective: dict[str, dict[str, Any]]) -> None:
        await self._store.io(self._store.save_handled, handled, effective)
        self._handled = handled
        self._drift = list(handled.state.get("drift", []))

    async def handle_config(self, payload: bytes) -> None:
        try:
            raw: Any = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            refusal = ControlRefusal(
                AckStatus.REJECTED,
                f"schema-invalid: not JSON: {exc}",
                code=RefusalCode.SCHEMA_INVALID,
            )
            reason = self._refused("config", refusal, "<unparseable>")
            await self._publish_state(refused_body(self._handled_state(), reason))
            return
        try:
            verdict = verify_config(
                raw,
                gateway_id=self._s.gateway_id,
                trusted=self._trusted,
                now=utc_now(),
                applied_version=self.config_version,
                applied_hash=self._handled.hash if self._handled else None,
            )
        except ControlRefusal as exc:
            reason = self._refused("config", exc, _version_of(raw))
            expired = _expired_doc(raw) if exc.code is RefusalCode.EXPIRED else None
            if expired is None:
                await self._publish_state(refused_body(self._handled_state(), reason))
            else:
                await self._handled_without_writes(expired, raw, reason)
            return
        doc = verdict.doc
        if verdict.action is ConfigAction.REREPORT:
            log.info(
                "gateway %s: config version %d again: re-reported", self._s.gateway_id, doc.version
            )
            await self._publish_state(self._handled_state() or refused_body(None, "no state"))
            return
        profiles, nameplates = self._profiles()
        try:
            checked = validate_config_devices(doc.devices, profiles, nameplates)
        except SetpointRefusal as exc:
            reason = self._refused("config", exc, doc.version)
            await self._handled_without_writes(doc, raw, reason)
            return
        await self._apply(doc, config_hash(raw), checked)

    def _profiles(self) -> tuple[dict[str, DeviceProfile], dict[str, dict[str, float]]]:
        profiles: dict[str, DeviceProfile] = {}
        nameplates: dict[str, dict[str, float]] = {}
        for poller in self._pollers:
            info = poller.state.info
            if info is not None and poller.profile is not None:
                profiles[info.device] = poller.profile
                nameplates[info.device] = device_nameplate(info.nameplate)
        return profiles, nameplates

    async def _precheck(self, checked: dict[str, list[ValidatedSetting]]) -> str | None:
        """Every device's values fit their registers (read: scale factors); else why not."""
        for device, settings in checked.items():
            poller = self._poller(device)
            if poller is None or poller.profile is None:
                return f"devices.{device}: no such device with a profile on this gateway"
            writer = self._writer(poller, poller.profile)
            if writer is None:
                continue  # not discovered: reported failed when applying, nothing written
            try:
                await writer.precheck({s.point: s.value for s in settings})
            except WriteFailed as exc:
                self.stats.refusals["encoding"] += 1
                name = setting_for_point(poller.profile, exc.point)
                return f"devices.{device}.{name}: not written: {exc}"
        return None

    async def _handled_without_writes(
        self, doc: ConfigDoc, raw: Mapping[str, Any], reason: str
    ) -> None:
        await self._handled_without_writes_of(doc, config_hash(raw), reason)

    async def _handled_without_writes_of(self, doc: ConfigDoc, hash_: str, reason: str) -> None:
        body = failed_body(doc.version, hash_, doc.devices, reason)
        await self._save(HandledConfig(doc.version, body["hash"], body), {})
        await self._publish_state(body)

    async def _apply(
        self, doc: ConfigDoc, hash_: str, checked: dict[str, list[ValidatedSetting]]
    ) -> None:
        reason = await self._precheck(checked)
        if reason is not None:
            await self._handled_without_writes_of(doc, hash_, reason)
            return
        statuses: dict[str, str] = {}
        points: dict[str, dict[str, Any]] = {}
        details: list[str] = []
        effective: dict[str, dict[str, Any]] = {}
        for device, settings in checked.items():
            poller = self._poller(device)
            assert poller is not None
            assert poller.profile is not None
            ok, read_back, detail = await self._apply_device(
                poller, poller.profile, device, settings
            )
            statuses[device] = "applied" if ok else "failed"
            points[device] = read_back
            if ok:
                effective[device] = {s.name: to_json_value(s.value) for s in settings}
            else:
                details.append(detail)
        body = applied_body(doc.version, hash_, statuses, points, details)
        await self._save(HandledConfig(doc.version, hash_, body), effective)
        log.info(
            "gateway %s: config version %d %s (%s)",
            self._s.gateway_id,
            doc.version,
            body["status"],
            body["detail"] or "every device applied",
        )
        await self._publish_state(body)

    async def _apply_device(
        self,
        poller: DevicePoller,
        profile: DeviceProfile,
        device: str,
        settings: list[ValidatedSetting],
    ) -> tuple[bool, dict[str, Any], str]:
        """Read previous values, write, read back; on failure restore the previous."""
        writer = self._writer(poller, profile)
        if writer is None:
            return False, {}, f"{device}: not discovered ({poller.state.status}); nothing written"
        items = {s.point: s.value for s in settings}
        try:
            previous = {ref: await writer.read_setting(ref, value) for ref, value in items.items()}
        except WriteFailed as exc:
            return False, {}, f"{device}: previous values unreadable ({exc}); nothing written"
        try:
            await writer.write_settings(items)
            read_back = {
                s.name: to_json_value(await writer.check_setting(s.point, s.value))
                for s in settings
            }
            return True, read_back, ""
        except WriteFailed as exc:
            failure = exc
        name = setting_for_point(profile, failure.point)
        restored = await self._restore(writer, previous)
        log.warning(
            "gateway %s: config on %s failed at %s: %s; %s",
            self._s.gateway_id,
            device,
            name,
            failure,
            restored,
        )
        current: dict[str, Any] = {}
        for s in settings:
            try:
                current[s.name] = to_json_value(await writer.read_setting(s.point, s.value))
            except WriteFailed:
                current[s.name] = None
        return False, current, f"{device}.{name} ({failure.point}): {failure.reason}; {restored}"

    async def _restore(
        self, writer: DeviceWriter, previous: Mapping[str, SettingValue | None]
    ) -> str:
        known = {ref: value for ref, value in previous.items() if value is not None}
        try:
            # Re-write only what the device no longer holds: a write the device refused
            # left its point unchanged, and writing it again would only fail again.
            changed = {}
            for ref, value in known.items():
                try:
                    await writer.check_setting(ref, value)
                except WriteFailed as exc:
                    if not exc.mismatch:
                        raise
                    changed[ref] = value
            if changed:
                await writer.write_settings(changed)
                for ref, value in changed.items():
                    await writer.check_setting(ref, value)
        except WriteFailed as exc:
            return f"restore of previous values FAILED: {exc}"
        return f"previous values restored ({len(changed)} of {len(known)} re-written)"

    # ----- drift ------------------------------------------------------------------------
    async def _drift_loop(self) -> None:
        while True:
            await asyncio.sleep(self._s.config_check_interval_s)
            async with self._lock:
                try:
                    await self.flush_unbuffered()
                    await self.check_drift()
                except Exception:
                    log.exception("gateway %s: drift check failed", self._s.gateway_id)

    async def check_drift(self) -> list[str]:
        """Read every effective setting back; report a changed drift set."""
        if self._handled is None:
            return self._drift
        effective = await self._store.io(self._store.effective)
        drift: list[str] = []
        found: list[dict[str, Any]] = []
        for device, settings in effective.items():
            poller = self._poller(device)
            if poller is None or poller.profile is None:
                continue
            writer = self._writer(poller, poller.profile)
            if writer is None:
                continue
            for name, value in settings.items():
                setting = poller.profile.setting(name)
                if setting is None:
                    continue
                expected: SettingValue = tuple(value) if isinstance(value, list) else float(value)
                try:
                    await writer.check_setting(setting.point, expected)
                except WriteFailed as exc:
                    if not exc.mismatch:
                        continue  # unreadable now is not drift
                    drift.append(f"{device}.{name}")
                    found.append(
                        {"device": device, "setting": name, "expected": value, "actual": exc.reason}
                    )
        if sorted(drift) == sorted(self._drift):
            return self._drift
        body = drift_body(self._handled.state, drift)
        await self._save(HandledConfig(self._handled.version, self._handled.hash, body), {})
        log.warning(
            "gateway %s: config drift now %s", self._s.gateway_id, sorted(drift) or "cleared"
        )
        if drift:
            await self._emit(
                "config_drift",
                "warning",
                None,
                {"version": self._handled.version, "drift": found},
            )
        await self._publish_state(body)
        return self._drift


def _payload_id(payload: bytes) -> UUID | None:
    try:
        return document_id(orjson.loads(payload))
    except orjson.JSONDecodeError:
        return None


def _version_of(raw: object) -> object:
    return raw.get("version", "<no version>") if isinstance(raw, dict) else "<not an object>"


def _expired_doc(raw: Any) -> ConfigDoc | None:
    """The document of a verified but expired config (the signature was checked first)."""
    try:
        return ConfigDoc.model_validate_json(orjson.dumps(raw), strict=True)
    except (ValidationError, orjson.JSONEncodeError):
        return None
