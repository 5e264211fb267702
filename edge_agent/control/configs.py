"""Signed configs: verified, validated for every device, then per device read the
previous values, write, read back, restore on failure (``docs/control.md``, "Configs").

A device that does not answer (asleep at night, unreachable) keeps its part of the
config *pending*: kept in the store, applied when its poller sees it answer again
(decision 153). A device that answers with a refusal or another value stays failed."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from pydantic import ValidationError

from contracts.control import (
    ConfigAction,
    ControlRefusal,
    RefusalCode,
    config_hash,
    verify_config,
)
from contracts.messages import AckStatus, ConfigDoc
from contracts.signing import TrustedKeys
from contracts.timeutil import utc_now
from device_profiles.schema import DeviceProfile
from device_profiles.setpoints import SetpointRefusal, ValidatedSetting, validate_config_devices
from edge_agent.config_report import (
    UNANSWERING,
    applied_body,
    device_outcome,
    drift_body,
    failed_body,
    pending_detail,
    refused_body,
    setting_for_point,
    to_json_value,
    without_pending_details,
)
from edge_agent.control.answers import Answers
from edge_agent.control.devices import Devices
from edge_agent.control.restore import restore_previous
from edge_agent.control.stats import ControlStats
from edge_agent.control_store import ControlStore, HandledConfig
from edge_agent.device_writer import WriteFailed
from edge_agent.poller import DevicePoller

__all__ = ["ConfigBook", "Configs"]

log = logging.getLogger(__name__)


class ConfigBook:
    """The last handled config and its drift set, kept in memory and in the store."""

    def __init__(self, store: ControlStore) -> None:
        self._store = store
        self.handled: HandledConfig | None = store.handled()
        self.drift: list[str] = list(self.handled.state.get("drift", [])) if self.handled else []
        #: Devices whose part of the handled config waits for them to answer.
        self.pending: set[str] = set(store.pending())

    @property
    def version(self) -> int | None:
        return self.handled.version if self.handled else None

    def state(self) -> dict[str, Any] | None:
        """The last ``config_state`` body (a copy), None before the first config."""
        return dict(self.handled.state) if self.handled else None

    async def save(
        self,
        handled: HandledConfig,
        effective: dict[str, dict[str, Any]],
        pending: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Save ``handled``; ``pending`` (when given) replaces the pending settings."""
        await self._store.io(self._store.save_handled, handled, effective, pending)
        self.handled = handled
        self.drift = list(handled.state.get("drift", []))
        if pending is not None:
            self.pending = set(pending)

    async def pending_settings(self) -> dict[str, dict[str, Any]]:
        return await self._store.io(self._store.pending)


class Configs:
    def __init__(
        self,
        gateway_id: str,
        trusted: TrustedKeys,
        book: ConfigBook,
        devices: Devices,
        answers: Answers,
        stats: ControlStats,
    ) -> None:
        self._gateway_id = gateway_id
        self._trusted = trusted
        self._book = book
        self._devices = devices
        self._answers = answers
        self._stats = stats

    async def handle(self, payload: bytes) -> None:
        try:
            raw: Any = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            refusal = ControlRefusal(
                AckStatus.REJECTED,
                f"schema-invalid: not JSON: {exc}",
                code=RefusalCode.SCHEMA_INVALID,
            )
            reason = self._answers.refused("config", refusal, "<unparseable>")
            await self._answers.publish_state(refused_body(self._book.state(), reason))
            return
        try:
            verdict = verify_config(
                raw,
                gateway_id=self._gateway_id,
                trusted=self._trusted,
                now=utc_now(),
                applied_version=self._book.version,
                applied_hash=self._book.handled.hash if self._book.handled else None,
            )
        except ControlRefusal as exc:
            await self._refused(raw, exc)
            return
        doc = verdict.doc
        if verdict.action is ConfigAction.REREPORT:
            log.info(
                "gateway %s: config version %d again: re-reported", self._gateway_id, doc.version
            )
            await self._answers.publish_state(self._book.state() or refused_body(None, "no state"))
            return
        profiles, nameplates = self._devices.profiles()
        try:
            checked = validate_config_devices(doc.devices, profiles, nameplates)
        except SetpointRefusal as exc:
            reason = self._answers.refused("config", exc, doc.version)
            await self._handled_without_writes(doc, config_hash(raw), reason)
            return
        await self._apply(doc, config_hash(raw), checked)

    async def _refused(self, raw: Any, exc: ControlRefusal) -> None:
        """A refused document moves nothing, except one verified but expired: handled."""
        reason = self._answers.refused("config", exc, _version_of(raw))
        expired = _expired_doc(raw) if exc.code is RefusalCode.EXPIRED else None
        if expired is None:
            await self._answers.publish_state(refused_body(self._book.state(), reason))
        else:
            await self._handled_without_writes(expired, config_hash(raw), reason)

    async def _precheck(self, checked: dict[str, list[ValidatedSetting]]) -> str | None:
        """Every device's values fit their registers (read: scale factors); else why not."""
        for device, settings in checked.items():
            poller = self._devices.poller(device)
            if poller is None or poller.profile is None:
                return f"devices.{device}: no such device with a profile on this gateway"
            writer = self._devices.writer(poller, poller.profile)
            if writer is None:
                continue  # not discovered: pending or failed when applying, nothing written
            try:
                await writer.precheck({s.point: s.value for s in settings})
            except WriteFailed as exc:
                if exc.unreachable:
                    continue  # no answer: pending when applying, checked again then
                self._stats.refusals["encoding"] += 1
                name = setting_for_point(poller.profile, exc.point)
                return f"devices.{device}.{name}: not written: {exc}"
        return None

    async def _handled_without_writes(self, doc: ConfigDoc, hash_: str, reason: str) -> None:
        body = failed_body(doc.version, hash_, doc.devices, reason)
        await self._book.save(HandledConfig(doc.version, body["hash"], body), {}, {})
        await self._answers.publish_state(body)

    async def _apply(
        self, doc: ConfigDoc, hash_: str, checked: dict[str, list[ValidatedSetting]]
    ) -> None:
        reason = await self._precheck(checked)
        if reason is not None:
            await self._handled_without_writes(doc, hash_, reason)
            return
        statuses: dict[str, str] = {}
        points: dict[str, dict[str, Any]] = {}
        details: list[str] = []
        effective: dict[str, dict[str, Any]] = {}
        pending: dict[str, dict[str, Any]] = {}
        for device, settings in checked.items():
            poller = self._devices.poller(device)
            # _precheck made sure every device has a poller and a profile
            assert poller is not None
            assert poller.profile is not None
            status, read_back, detail = await self._apply_device(poller, poller.profile, settings)
            statuses[device] = status
            points[device] = read_back
            if status == "applied":
                effective[device] = {s.name: to_json_value(s.value) for s in settings}
            else:
                details.append(detail)
            if status == "pending":
                pending[device] = dict(doc.devices[device])
        body = applied_body(doc.version, hash_, statuses, points, details)
        await self._book.save(HandledConfig(doc.version, hash_, body), effective, pending)
        log.info(
            "gateway %s: config version %d %s (%s)",
            self._gateway_id,
            doc.version,
            body["status"],
            body["detail"] or "every device applied",
        )
        await self._answers.publish_state(body)

    async def apply_pending(self) -> None:
        """Apply the pending part of the handled config on every device answering again
        (its poller ``online``): validated, prechecked, written and read back as when
        the config came; report the new ``config_state`` when anything changed."""
        handled = self._book.handled
        if handled is None or not self._book.pending:
            return
        kept = await self._book.pending_settings()
        ready = [d for d in kept if self._answering(d)]
        if not ready:
            return
        profiles, nameplates = self._devices.profiles()
        statuses: dict[str, str] = dict(handled.state.get("devices", {}))
        points: dict[str, dict[str, Any]] = dict(handled.state.get("points", {}))
        details = without_pending_details(str(handled.state.get("detail", "")), ready)
        effective: dict[str, dict[str, Any]] = {}
        for device in ready:
            status, read_back, detail = await self._apply_kept(
                device, kept[device], profiles, nameplates
            )
            statuses[device] = status
            points[device] = read_back
            if status == "applied":
                effective[device] = kept.pop(device)
            elif status == "failed":
                kept.pop(device)
            if detail:
                details.append(detail)
        if all(statuses[d] == "pending" for d in ready):
            return  # still no answer (the poller had not noticed yet): nothing new to tell
        detail = "; ".join(details)
        state = {**handled.state, "devices": statuses, "points": points, "detail": detail}
        body = drift_body(state, list(handled.state.get("drift", [])))
        await self._book.save(HandledConfig(handled.version, handled.hash, body), effective, kept)
        log.info(
            "gateway %s: pending config version %s on %s: %s",
            self._gateway_id,
            handled.version,
            ", ".join(f"{d} {statuses[d]}" for d in ready),
            body["status"],
        )
        await self._answers.publish_state(body)

    def _answering(self, device: str) -> bool:
        poller = self._devices.poller(device)
        return poller is not None and poller.state.status == "online"

    async def _apply_kept(
        self,
        device: str,
        settings: dict[str, Any],
        profiles: dict[str, DeviceProfile],
        nameplates: dict[str, dict[str, float]],
    ) -> tuple[str, dict[str, Any], str]:
        """One device's kept settings: the same checks as a new config's, then applied."""
        try:
            checked = validate_config_devices({device: settings}, profiles, nameplates)
        except SetpointRefusal as exc:
            return "failed", {}, f"{device}: pending settings refused: {exc}"
        reason = await self._precheck(checked)
        if reason is not None:
            return "failed", {}, reason
        poller = self._devices.poller(device)
        if poller is None or poller.profile is None:
            return "failed", {}, f"{device}: no such device with a profile on this gateway"
        return await self._apply_device(poller, poller.profile, checked[device])

    async def _apply_device(
        self, poller: DevicePoller, profile: DeviceProfile, settings: list[ValidatedSetting]
    ) -> tuple[str, dict[str, Any], str]:
        """Read previous values, write, read back; on failure restore the previous. The
        device's status: ``applied``, ``failed``, or ``pending`` when it did not answer."""
        device = poller.state.device_id
        writer = self._devices.writer(poller, profile)
        if writer is None:
            seen = poller.state.status
            if seen in UNANSWERING:
                return "pending", {}, pending_detail(device, f"{seen}: {poller.state.last_error}")
            return "failed", {}, f"{device}: not discovered ({seen}); nothing written"
        items = {s.point: s.value for s in settings}
        try:
            previous = {ref: await writer.read_setting(ref, value) for ref, value in items.items()}
        except WriteFailed as exc:
            if exc.unreachable:
                return "pending", {}, pending_detail(device, str(exc))
            return "failed", {}, f"{device}: previous values unreadable ({exc}); nothing written"
        try:
            await writer.write_settings(items)
            read_back = {
                s.name: to_json_value(await writer.check_setting(s.point, s.value))
                for s in settings
            }
            return "applied", read_back, ""
        except WriteFailed as exc:
            failure = exc
        name = setting_for_point(profile, failure.point)
        restored = await restore_previous(writer, previous)
        log.warning(
            "gateway %s: config on %s failed at %s: %s; %s",
            self._gateway_id,
            device,
            name,
            failure,
            restored,
        )
        status = device_outcome(False, unreachable=failure.unreachable)
        if status == "pending":  # gone mid-write: written in full when it answers again
            return status, {}, pending_detail(device, f"{name}: {failure.reason}, {restored}")
        current: dict[str, Any] = {}
        for s in settings:
            try:
                current[s.name] = to_json_value(await writer.read_setting(s.point, s.value))
            except WriteFailed:
                current[s.name] = None
        return status, current, f"{device}.{name} ({failure.point}): {failure.reason}; {restored}"


def _version_of(raw: object) -> object:
    return raw.get("version", "<no version>") if isinstance(raw, dict) else "<not an object>"


def _expired_doc(raw: Any) -> ConfigDoc | None:
    """The document of a verified but expired config (the signature was checked first)."""
    try:
        return ConfigDoc.model_validate_json(orjson.dumps(raw), strict=True)
    except (ValidationError, orjson.JSONEncodeError):
        return None
