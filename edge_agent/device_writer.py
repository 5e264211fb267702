"""Writing settings to one discovered device and reading them back (Modbus I/O).

Values are engineering units as validated by :mod:`device_profiles.setpoints`; every
word is produced by :mod:`edge_agent.setpoint_codec` with the scale factor read from the
device just before the write. A curve setting (a list, one value per point of a DER 70x
curve: 705/706 ``Crv.Pt``, 707-710 ``Crv.MustTrip|MayTrip|MomCess.Pt``) or a set value
(711 ``Ctl.DbOf``, 705 ``Crv.DeptRef``) is written into the staging set (the last one),
with each curve's ``ActPt``, adopted with ``AdptCrvReq``/``AdptCtlReq`` (waiting for the
result: 1 completed, 2 failed) and read back from the active set (the first). Every
failure is a :class:`WriteFailed` naming the point.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from device_profiles.schema import DeviceProfile, PointRef
from device_profiles.setpoints import (
    SetpointRefusal,
    is_adoption_request,
    is_request_point,
    validate_settings,
)
from edge_agent.modbus import ModbusEndpoint, ModbusReadError, ModbusWriteError
from edge_agent.setpoint_codec import (
    CodecError,
    Located,
    act_pt_key,
    adoption_request,
    decode_sf,
    decode_value,
    encode_value,
    locate,
    same_value,
    set_kind,
    set_path,
)

__all__ = [
    "DeviceWriter",
    "LimitGuard",
    "SettingValue",
    "WriteFailed",
    "is_curve",
    "is_request_point",
    "limit_guard",
    "no_answer",
]

SettingValue = float | tuple[float, ...]
ADOPT_POLL_S = 0.1
#: Observes every Modbus write attempt: ``"ok"``, ``"error"`` or ``"refused"``.
WriteObserver = Callable[[str], None]


class WriteFailed(Exception):
    """A setting that was not (or not verifiably) applied: ``point`` and ``reason``."""

    def __init__(
        self, point: str, reason: str, *, mismatch: bool = False, unreachable: bool = False
    ) -> None:
        super().__init__(f"{point}: {reason}")
        self.point = point
        self.reason = reason
        #: True when the device answered with a different value (not an I/O error).
        self.mismatch = mismatch
        #: True when the device did not answer at all (connection refused, timeout, a
        #: broken connection), as opposed to answering with a refusal or another value.
        self.unreachable = unreachable


#: Modbus failures that mean "no answer" (the poller's asleep/unreachable, not faulty).
_NO_ANSWER = frozenset({"connect", "timeout", "io"})


def no_answer(reason: str) -> bool:
    """True for a Modbus failure where the device did not answer (connection refused,
    timeout, broken connection); False for an answer (an exception response)."""
    return reason in _NO_ANSWER


#: Checks a setting value against the profile's limits right before it is written;
#: raises :class:`WriteFailed`. Values the agent did not get from a validated document
#: (a restore, a curve completed from the active curve) pass through it too.
LimitGuard = Callable[[str, "SettingValue"], None]


def limit_guard(profile: DeviceProfile, nameplate: Mapping[str, Any]) -> LimitGuard:
    """A :data:`LimitGuard` over :func:`device_profiles.setpoints.validate_settings`."""

    def check(ref: str, value: SettingValue) -> None:
        setting = profile.setting_for(ref)
        if setting is None:
            return  # not a setting (ActPt): the device checks it
        shown: object = list(value) if isinstance(value, tuple) else value
        try:
            validate_settings(profile, {setting.name: shown}, nameplate)
        except SetpointRefusal as exc:
            raise WriteFailed(ref, f"not written: {exc}") from None

    return check


def is_curve(ref: str) -> bool:
    """A point of a curve inside an adoptable set (``705.Crv.Pt.V``,
    ``707.Crv.MustTrip.Pt.V``): its setting is a list, one value per curve point."""
    return set_kind(ref) == "curve"


@dataclass(frozen=True, slots=True)
class _Set:
    model: int
    group: str  # "Crv" or "Ctl"
    staging: int  # 0-based index of the last set
    count: int  # number of sets
    request: str  # "AdptCrvReq" or "AdptCtlReq"


class DeviceWriter:
    """Settings I/O for one device (``unit`` on ``endpoint``) of ``profile``, at the
    model addresses discovered (``blocks``: model id → (ID register address, L))."""

    def __init__(
        self,
        endpoint: ModbusEndpoint,
        unit: int,
        profile: DeviceProfile,
        blocks: Mapping[int, tuple[int, int]],
        *,
        guard: LimitGuard,
        adopt_timeout_s: float = 10.0,
        on_write: WriteObserver | None = None,
    ) -> None:
        self._guard = guard
        self._endpoint = endpoint
        self._unit = unit
        self._profile = profile
        self._blocks = dict(blocks)
        self._adopt_timeout_s = adopt_timeout_s
        self._on_write = on_write or (lambda outcome: None)

    # ----- registers ------------------------------------------------------------------
    async def _read(self, point: str, address: int, count: int) -> list[int]:
        try:
            return await self._endpoint.read(self._unit, address, count)
        except ModbusReadError as exc:
            raise WriteFailed(
                point, f"read failed: {exc}", unreachable=no_answer(exc.reason)
            ) from None

    async def _write(self, point: str, address: int, words: list[int]) -> None:
        try:
            await self._endpoint.write(self._unit, address, words)
        except ModbusWriteError as exc:
            self._on_write("error")
            raise WriteFailed(point, f"Modbus {exc}", unreachable=no_answer(exc.reason)) from None
        self._on_write("ok")

    def _locate(self, ref: str, path: str | None = None) -> Located:
        try:
            return locate(self._profile, self._blocks, ref, path)
        except CodecError as exc:
            raise WriteFailed(exc.point, exc.reason) from None

    async def _sf(self, point: Located) -> int | None:
        if point.sf_address is None:
            return point.sf_fixed
        return decode_sf(await self._read(point.ref, point.sf_address, 1))

    async def read_point(self, point: Located) -> tuple[float | None, int | None]:
        """The point's engineering value and the SF it was scaled with (value and SF
        read in one request when the SF register is close by)."""
        if point.sf_address is None:
            words = await self._read(point.ref, point.address, point.size)
            return decode_value(point, words, None), point.sf_fixed
        lo = min(point.address, point.sf_address)
        hi = max(point.address + point.size, point.sf_address + 1)
        if hi - lo <= 125:
            words = await self._read(point.ref, lo, hi - lo)
            sf = decode_sf(words[point.sf_address - lo : point.sf_address - lo + 1])
            value = decode_value(
                point, words[point.address - lo : point.address - lo + point.size], sf
            )
            return value, sf
        sf = await self._sf(point)
        words = await self._read(point.ref, point.address, point.size)
        return decode_value(point, words, sf), sf

    async def _words(self, point: Located, value: float) -> list[int]:
        """The words to write for ``value``, whose *rounded* value obeys the limits too:
        a limit that is not on the point's scale-factor step must not be rounded past
        (4996 W at SF 1 is written as 5000 W)."""
        if not point.writable:
            raise WriteFailed(point.ref, "the point is not writable")
        sf = await self._sf(point)
        try:
            words = encode_value(point, value, sf)
        except CodecError as exc:
            raise WriteFailed(exc.point, exc.reason) from None
        written = decode_value(point, words, sf)
        if written is not None and written != value:
            try:
                self._guard(re.sub(r"\[\d+\]", "", point.ref), written)
            except WriteFailed as exc:
                raise WriteFailed(
                    point.ref, f"{value:g} rounds to {written:g} at SF {sf}: {exc.reason}"
                ) from None
        return words

    async def _write_point(self, point: Located, value: float) -> None:
        try:
            words = await self._words(point, value)
        except WriteFailed:
            self._on_write("refused")
            raise
        await self._write(point.ref, point.address, words)

    async def _encodable(self, point: Located, value: float) -> None:
        await self._words(point, value)

    async def precheck(self, items: Mapping[str, SettingValue]) -> None:
        """Everything :meth:`write_settings` would write is within the limits and fits its
        register at the device's current scale factors; nothing is written."""
        for ref, value in items.items():
            self._guard(ref, value)
            if isinstance(value, tuple):
                staging, key = self._set(ref)
                for i, item in enumerate(value):
                    await self._encodable(
                        self._locate(ref, set_path(key, staging.staging, i)), item
                    )
            elif set_kind(ref) == "set_scalar":
                staging, key = self._set(ref)
                await self._encodable(self._locate(ref, set_path(key, staging.staging)), value)
            else:
                await self._encodable(self._locate(ref), value)

    # ----- scalars ----------------------------------------------------------------------
    async def write_scalar(self, ref: str, value: float) -> None:
        self._guard(ref, value)
        await self._write_point(self._locate(ref), value)
        if is_adoption_request(ref) and value:
            await self._await_adoption(ref)

    async def await_effect(self, ref: str, expected: float, timeout_s: float) -> float:
        """Read ``ref`` until it shows ``expected`` (a switch takes its time);
        :class:`WriteFailed` naming what it shows when ``timeout_s`` runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.read_scalar(ref)
            if value is not None and abs(value - expected) < 1e-9:
                return value
            if time.monotonic() >= deadline:
                raise WriteFailed(
                    ref,
                    f"no effect: {ref} reads {value!r}, expected {expected:g}"
                    f" within {timeout_s:g} s",
                    mismatch=True,
                )
            await asyncio.sleep(0.1)  # the device's own pace; nothing to await but it

    async def read_scalar(self, ref: str) -> float | None:
        value, _ = await self.read_point(self._locate(ref))
        return value

    async def check_scalar(self, ref: str, expected: float) -> float | None:
        """Read ``ref`` back; :class:`WriteFailed` unless it equals ``expected``."""
        if is_request_point(ref):
            return expected  # acted on and reset by the device; adoption checked above
        point = self._locate(ref)
        actual, sf = await self.read_point(point)
        if not same_value(expected, actual, sf):
            raise WriteFailed(ref, f"read back {actual!r}, expected {expected:g}", mismatch=True)
        return actual

    # ----- sets: curves and controls of the DER 70x models --------------------------------
    def _set(self, ref: str) -> tuple[_Set, str]:
        """The adoptable set (curve or control) ``ref`` lies in, and its unindexed key."""
        parsed = PointRef.parse(ref)
        if parsed.model is None or parsed.model not in self._blocks:
            raise WriteFailed(ref, "the device has no such model")
        key = parsed.path
        curve = set_kind(ref) == "curve"
        count = 0
        while True:
            try:
                locate(self._profile, self._blocks, ref, set_path(key, count, 0 if curve else None))
            except CodecError:
                break
            count += 1
        if count < 2:
            raise WriteFailed(ref, "the device has no staging set (fewer than 2 curves)")
        group = key.split(".", 1)[0]
        return _Set(parsed.model, group, count - 1, count, adoption_request(parsed.model)), key

    async def read_curve(self, ref: str, points: int | None = None) -> tuple[float | None, ...]:
        """The active curve's values of ``ref`` (its ``ActPt`` points, or ``points``)."""
        active, key = self._set(ref)
        if points is None:
            act = self._locate(f"{active.model}.ActPt", set_path(act_pt_key(key), 0))
            n, _ = await self.read_point(act)
            points = int(n or 0)
        values = []
        for i in range(points):
            value, _ = await self.read_point(self._locate(ref, set_path(key, 0, i)))
            values.append(value)
        return tuple(values)

    async def _read_set_scalar(self, ref: str) -> tuple[Located, float | None, int | None]:
        _, key = self._set(ref)
        point = self._locate(ref, set_path(key, 0))
        value, sf = await self.read_point(point)
        return point, value, sf

    async def write_set(self, model: int, items: Mapping[str, SettingValue]) -> None:
        """Write one model's set values (``ref`` → a curve's list or a control's value)
        into the staging set, set each curve's ``ActPt`` and adopt once. Curves sharing
        an ``ActPt`` have one length."""
        first = next(iter(items))
        staging, _ = self._set(first)
        lengths: dict[str, set[int]] = {}
        for ref, value in items.items():
            if isinstance(value, tuple):
                lengths.setdefault(act_pt_key(PointRef.parse(ref).path), set()).add(len(value))
        if any(len(n) != 1 for n in lengths.values()):
            raise WriteFailed(first, "the curve lists of one model differ in length")
        for ref, value in items.items():
            self._guard(ref, value)
        request = f"{model}.{staging.request}"
        self._guard(request, float(staging.staging + 1))
        adopt = self._locate(request)  # before any write: a model without adoption fails here
        for ref, value in items.items():
            key = PointRef.parse(ref).path
            if isinstance(value, tuple):
                for i, item in enumerate(value):
                    path = set_path(key, staging.staging, i)
                    await self._write_point(self._locate(ref, path), item)
            else:
                await self._write_point(self._locate(ref, set_path(key, staging.staging)), value)
        for act_key, n in lengths.items():
            act = self._locate(f"{model}.ActPt", set_path(act_key, staging.staging))
            await self._write_point(act, float(n.pop()))
        await self._write_point(adopt, float(staging.staging + 1))
        await self._await_adoption(request)

    async def _await_adoption(self, request: str) -> None:
        model = PointRef.parse(request).model
        result_name = "AdptCtlRslt" if request.endswith("AdptCtlReq") else "AdptCrvRslt"
        result = self._locate(f"{model}.{result_name}")
        deadline = time.monotonic() + self._adopt_timeout_s
        while True:
            value, _ = await self.read_point(result)
            if value == 1:
                return
            if value == 2:
                raise WriteFailed(request, f"the device refused the curve ({result_name} = 2)")
            if time.monotonic() > deadline:
                raise WriteFailed(
                    request, f"{result_name} not completed within {self._adopt_timeout_s:g}s"
                )
            await asyncio.sleep(ADOPT_POLL_S)

    async def check_curve(self, ref: str, expected: tuple[float, ...]) -> tuple[float, ...]:
        actual = await self.read_curve(ref, len(expected))
        _, key = self._set(ref)
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            point = self._locate(ref, set_path(key, 0, i))
            _, sf = await self.read_point(point)
            if not same_value(want, got, sf):
                raise WriteFailed(point.ref, f"read back {got!r}, expected {want:g}", mismatch=True)
        return tuple(float(v) for v in actual if v is not None)

    # ----- settings (scalars, curves and set values) ------------------------------------
    async def read_setting(self, ref: str, like: SettingValue) -> SettingValue | None:
        """The current value of a setting shaped like ``like`` (a curve: a tuple); a set
        value (``711.Ctl.DbOf``) is read from the active set."""
        if isinstance(like, tuple):
            values = await self.read_curve(ref)
            if any(v is None for v in values):
                return None
            return tuple(float(v) for v in values if v is not None)
        if set_kind(ref) == "set_scalar":
            _, value, _ = await self._read_set_scalar(ref)
            return value
        return await self.read_scalar(ref)

    async def write_settings(self, items: Mapping[str, SettingValue]) -> None:
        """Write scalars in order, then each model's set values (one adoption per model)."""
        sets: dict[int, dict[str, SettingValue]] = {}
        for ref, value in items.items():
            if isinstance(value, tuple) or set_kind(ref) != "scalar":
                model = PointRef.parse(ref).model
                assert model is not None
                sets.setdefault(model, {})[ref] = value
            else:
                await self.write_scalar(ref, value)
        for model, values in sets.items():
            await self.write_set(model, await self._complete_set(model, values))

    async def _complete_set(
        self, model: int, items: dict[str, SettingValue]
    ) -> dict[str, SettingValue]:
        """The model's other set settings of the profile, taken from the active set, so
        adoption does not pull stale staging values into the active set."""
        lengths = {
            act_pt_key(PointRef.parse(ref).path): len(value)
            for ref, value in items.items()
            if isinstance(value, tuple)
        }
        out = dict(items)
        for setting in self._profile.settings:
            ref = setting.point
            kind = set_kind(ref)
            if ref in out or not ref.startswith(f"{model}.") or kind == "scalar":
                continue
            if kind == "set_scalar":
                _, value, _ = await self._read_set_scalar(ref)
                if value is not None:
                    out[ref] = float(value)
                continue
            current = await self.read_curve(ref, lengths.get(act_pt_key(PointRef.parse(ref).path)))
            if not current or any(v is None for v in current):
                continue
            out[ref] = tuple(float(v) for v in current if v is not None)
        return out

    async def check_setting(self, ref: str, expected: SettingValue) -> SettingValue:
        if isinstance(expected, tuple):
            return await self.check_curve(ref, expected)
        if set_kind(ref) == "set_scalar":
            point, actual, sf = await self._read_set_scalar(ref)
            if not same_value(expected, actual, sf):
                raise WriteFailed(
                    point.ref, f"read back {actual!r}, expected {expected:g}", mismatch=True
                )
            return expected
        actual = await self.check_scalar(ref, expected)
        return expected if actual is None else actual
