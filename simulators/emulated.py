"""One simulated device described by a device profile: its registers, writes and controls.

The SunSpec image (``SunS`` + the profile's models + end model) sits at ``base``; a
vendor map (the isolator) sits at its own addresses. Measured points come from
:mod:`simulators.renderers`; writable points live in a settings store, so read-back shows
what was applied. Writes are checked like a real device: every register written must
belong to a writable point, whole points only, inside the profile's hard limits and the
point's enumeration; anything else is refused with Modbus exception 3 (illegal value).
The DER curve models adopt curve ``n`` into the active curve 1 when ``AdptCrvReq = n``.
What the device obeys is read from the active set only (``Crv[0]``, ``Ctl[0]``): volt-var
with its ``DeptRef`` (705: W/var/available var/VA; 126: WMax/VArMax/VArAval), ``RspTms``
and ``Pri`` (REACTIVE = reactive priority at the VA limit, else active), volt-watt with
its ``RspTms``, frequency droop (711) with its deadbands, droops, ``PMin`` and ``RspTms``;
ratings as set in 702 (or 121), else the nameplate.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from device_profiles.schema import DeviceProfile, VendorRegister
from device_profiles.sunspec_codec import (
    END_MODEL,
    SUNS_MARKER,
    ModelLayout,
    Slot,
    decode_point,
    encode_model,
    layout,
    raw_to_value,
)
from simulators.plant import (
    BatteryControls,
    FreqDroop,
    InverterControls,
    MeterAt,
    PlantState,
    VoltVar,
)
from simulators.renderers import RenderContext, default_settings, render_model
from simulators.write_log import PointValue, parse_ref

__all__ = ["ILLEGAL_ADDRESS", "ILLEGAL_VALUE", "EmulatedDevice", "PendingWrite"]

ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
_CURVE_MODELS = {705: "Crv", 706: "Crv", 707: "Crv", 708: "Crv", 709: "Crv", 710: "Crv"}
_ISOLATOR = {"open": 0, "closed": 1, "tripped": 2}


@dataclass(frozen=True, slots=True)
class _Block:
    model_id: int
    addr: int  # address of the ID register
    lay: ModelLayout
    length: int  # L as served (65 for the quirky common model)


@dataclass(slots=True)
class PendingWrite:
    """A checked write, applied by :meth:`EmulatedDevice.apply` (after the write latency)."""

    sunspec: dict[tuple[int, str], Any] = field(default_factory=dict)
    vendor: dict[str, int] = field(default_factory=dict)


class EmulatedDevice:
    """A device of ``profile`` on ``unit_id``; feed it plant states with :meth:`render`."""

    def __init__(
        self,
        profile: DeviceProfile,
        *,
        unit_id: int,
        serial: str,
        base: int = 40000,
        common_length: int = 66,
        meter_at: MeterAt = "grid",
    ) -> None:
        self.profile = profile
        self.unit_id = unit_id
        self.serial = serial
        self.base = base
        self.meter_at = meter_at  # a meter's wiring: which flow it measures
        self.blocks: list[_Block] = []
        addr = base + 2
        for model_id in profile.models:
            lay = layout(model_id, profile.group_counts.get(model_id, {}))
            length = common_length if model_id == 1 else lay.length
            self.blocks.append(_Block(model_id, addr, lay, length))
            addr += 2 + length
        self.size = addr + 2 - base
        self.store: dict[tuple[int, str], Any] = {}
        for block in self.blocks:
            counts = block.lay.counts
            for path, value in default_settings(block.model_id, profile, counts).items():
                self.store[(block.model_id, path)] = value
        self.vendor: dict[str, int] = {}
        if profile.vendor_map is not None:
            self.vendor = {r.name: 0 for r in profile.vendor_map.registers}
            self.vendor["state"] = _ISOLATOR["closed"]
            self.vendor["rated_a"] = int(profile.nameplate.get("rated_a", 40))
        # faults and quirks, switched by simulators.faults
        self.sf_override: dict[tuple[int, str], int] = {}
        self.sentinels: set[tuple[int, str]] = set()
        self.fault_bits = 0
        self.counter_offsets: dict[str, float] = {}
        self._values: dict[int, dict[str, Any]] = {}
        #: Per block: the last values, SF overrides and sentinels encoded, and their registers.
        self._encoded: dict[
            int, tuple[dict[str, Any], dict[str, int], frozenset[str], list[int]]
        ] = {}
        self._state: PlantState | None = None
        self.registers: list[int] = [0] * self.size

    # ----- reading ----------------------------------------------------------------------
    def block(self, model_id: int) -> _Block:
        return next(b for b in self.blocks if b.model_id == model_id)

    def value(self, model_id: int, path: str) -> Any:
        """The engineering value being served (``None`` if not implemented)."""
        if (model_id, path) in self.sentinels:
            return None
        return self._values.get(model_id, {}).get(path)

    def sf(self, model_id: int, slot: Slot) -> int | None:
        if slot.sf_path is None:
            return slot.sf_fixed
        override = self.sf_override.get((model_id, slot.sf_path))
        sf = self._values.get(model_id, {}).get(slot.sf_path) if override is None else override
        return None if sf is None else int(sf)

    def render(self, state: PlantState) -> list[int]:
        """Re-encode the whole image from ``state`` and the settings; returns it."""
        self._state = state
        regs: list[int] = list(SUNS_MARKER)
        for index, block in enumerate(self.blocks):
            ctx = RenderContext(
                profile=self.profile,
                state=state,
                unit_id=self.unit_id,
                serial=self.serial,
                counts=block.lay.counts,
                fault_bits=self.fault_bits,
                counter_offsets=self.counter_offsets,
                meter_at=self.meter_at,
            )
            values = render_model(block.model_id, ctx)
            for (model_id, path), value in self.store.items():
                if model_id == block.model_id:
                    values[path] = value
            self._values[block.model_id] = values
            override = {p: v for (m, p), v in self.sf_override.items() if m == block.model_id}
            sentinel = frozenset(p for m, p in self.sentinels if m == block.model_id)
            # Settings models rarely change between steps: encoding them again is most of a
            # render's time (a simulated month re-renders thousands of times).
            cached = self._encoded.get(index)
            if cached is not None and cached[:3] == (values, override, sentinel):
                regs.extend(cached[3])
                continue
            encoded = encode_model(
                block.lay, values, sf_override=override, sentinel=sentinel, length=block.length
            )
            # A copy: settings lists may be changed in place by a later write.
            self._encoded[index] = (copy.deepcopy(values), override, sentinel, encoded)
            regs.extend(encoded)
        regs.extend(END_MODEL)
        self.registers = regs
        return regs

    def vendor_registers(self) -> tuple[int, list[int]] | None:
        """``(first address, registers)`` of the vendor map, or ``None``."""
        vmap = self.profile.vendor_map
        if vmap is None:
            return None
        first = min(r.address for r in vmap.registers)
        last = max(r.address + r.size for r in vmap.registers)
        regs = [0] * (last - first)
        for reg in vmap.registers:
            raw = self.vendor[reg.name] % (1 << (16 * reg.size))
            words = raw.to_bytes(2 * reg.size, "big")
            for i in range(reg.size):
                regs[reg.address - first + i] = int.from_bytes(words[2 * i : 2 * i + 2], "big")
        return first, regs

    # ----- point refs: write log, write faults, changes behind the agent's back ---------
    def _engineering(self, block: _Block, slot: Slot, regs: list[int]) -> PointValue:
        """Engineering value of ``regs`` for ``slot`` with the SF being served now."""
        raw = decode_point(slot.pdef, regs)
        if raw is None or isinstance(raw, str):
            return None
        value = raw_to_value(slot.pdef, raw, self.sf(block.model_id, slot))
        return value if isinstance(value, int | float) else None

    def _slots_touched(self, address: int, end: int) -> Iterator[tuple[_Block, Slot]]:
        """Every SunSpec point with a register in ``[address, end)``, gaps skipped."""
        addr = address
        while addr < end:
            block = next((b for b in self.blocks if b.addr <= addr < b.addr + 2 + b.length), None)
            slot = block.lay.at(addr - block.addr) if block is not None else None
            if block is None or slot is None:
                addr += 1
                continue
            yield block, slot
            addr = block.addr + slot.offset + slot.size

    def decode_write(self, address: int, values: list[int]) -> dict[str, PointValue]:
        """What a write asks for, by point ref, valid or not (so a refusal says what it was)."""
        end = address + len(values)
        out: dict[str, PointValue] = {}
        for block, slot in self._slots_touched(address, end):
            start = block.addr + slot.offset
            whole = address <= start and start + slot.size <= end
            regs = values[start - address : start - address + slot.size]
            out[f"{block.model_id}.{slot.path}"] = (
                self._engineering(block, slot, regs) if whole else None
            )
        for reg in self._vendor_touched(address, end):
            whole = address <= reg.address and reg.address + reg.size <= end
            words = values[reg.address - address : reg.address - address + reg.size]
            out[f"vendor.{reg.name}"] = _vendor_value(reg, _join(words)) if whole else None
        return out

    def _vendor_touched(self, address: int, end: int) -> list[VendorRegister]:
        vmap = self.profile.vendor_map
        if vmap is None:
            return []
        return [r for r in vmap.registers if r.address < end and address < r.address + r.size]

    def _vendor_register(self, name: str) -> VendorRegister:
        vmap = self.profile.vendor_map
        reg = None if vmap is None else next((r for r in vmap.registers if r.name == name), None)
        if reg is None:
            raise ValueError(f"unit {self.unit_id}: vendor.{name}: no such vendor register")
        return reg

    def _slot(self, model_id: int, path: str) -> tuple[_Block, Slot]:
        block = next((b for b in self.blocks if b.model_id == model_id), None)
        slot = None if block is None else block.lay.slot(path)
        if block is None or slot is None or slot.offset + slot.size > block.length + 2:
            raise ValueError(f"unit {self.unit_id}: {model_id}.{path}: no such point")
        return block, slot

    def served(self, ref: str) -> PointValue:
        """The engineering value a Modbus read of point ``ref`` (indexed) returns now."""
        model_id, path = parse_ref(ref)
        if model_id is None:
            reg = self._vendor_register(path)
            return _vendor_value(reg, self.vendor[reg.name] % (1 << (16 * reg.size)))
        block, slot = self._slot(model_id, path)
        start = block.addr - self.base + slot.offset
        return self._engineering(block, slot, self.registers[start : start + slot.size])

    def has_writable(self, ref: str) -> bool:
        """True if ``ref`` (indexed, unindexed or vendor) names a writable point here."""
        model_id, path = parse_ref(ref)
        if model_id is None:
            vmap = self.profile.vendor_map
            regs = [] if vmap is None else vmap.registers
            return any(r.name == path and r.access == "RW" for r in regs)
        block = next((b for b in self.blocks if b.model_id == model_id), None)
        if block is None:
            return False
        slots = [block.lay.slot(path)] if "[" in path else block.lay.slots_for(path)
        return any(s is not None and s.pdef.writable for s in slots)

    def set_setting(self, ref: str, value: float) -> None:
        """Set writable point ``ref`` (indexed) in the settings store, without any Modbus.

        No checks beyond "writable": a local change may be anything the registers hold.
        """
        model_id, path = parse_ref(ref)
        if model_id is None:
            reg = self._vendor_register(path)
            if reg.access != "RW":
                raise ValueError(f"unit {self.unit_id}: {ref}: not writable")
            self.vendor[reg.name] = int(value) % (1 << (16 * reg.size))
        else:
            _, slot = self._slot(model_id, path)
            if not slot.pdef.writable:
                raise ValueError(f"unit {self.unit_id}: {ref}: not writable")
            self.store[(model_id, path)] = value
        if self._state is not None:
            self.render(self._state)

    # ----- writing ----------------------------------------------------------------------
    def check_write(self, address: int, values: list[int]) -> PendingWrite | int:
        """A checked write, or the Modbus exception code a real device would answer."""
        if self.base <= address < self.base + self.size:
            return self._check_sunspec(address, values)
        vmap = self.profile.vendor_map
        if vmap is not None:
            return self._check_vendor(address, values)
        return ILLEGAL_ADDRESS

    def _slots_written(self, address: int, count: int) -> Iterator[tuple[_Block, Slot] | None]:
        addr = address
        end = address + count
        while addr < end:
            block = next((b for b in self.blocks if b.addr <= addr < b.addr + 2 + b.length), None)
            slot = block.lay.at(addr - block.addr) if block is not None else None
            if block is None or slot is None:
                yield None
                return
            yield block, slot
            addr = block.addr + slot.offset + slot.size

    def _check_sunspec(self, address: int, values: list[int]) -> PendingWrite | int:
        pending = PendingWrite()
        for item in self._slots_written(address, len(values)):
            if item is None:
                return ILLEGAL_VALUE
            block, slot = item
            start = block.addr + slot.offset
            if start < address or start + slot.size > address + len(values):
                return ILLEGAL_VALUE  # part of a multi-register point
            if not slot.pdef.writable or self._read_only_curve(block, slot):
                return ILLEGAL_VALUE
            raw = decode_point(slot.pdef, values[start - address : start - address + slot.size])
            if raw is None:
                return ILLEGAL_VALUE
            enum = slot.pdef.type.startswith("enum") and slot.pdef.symbols
            if enum and raw not in slot.pdef.symbols.values():
                return ILLEGAL_VALUE
            value = raw_to_value(slot.pdef, raw, self.sf(block.model_id, slot))
            setting = self.profile.setting_for(f"{block.model_id}.{slot.key}")
            if setting is not None and isinstance(value, int | float):
                lo, hi = self.profile.limit(setting.min), self.profile.limit(setting.max)
                if not lo - 1e-9 <= value <= hi + 1e-9:
                    return ILLEGAL_VALUE
            pending.sunspec[(block.model_id, slot.path)] = value
        return pending

    def _read_only_curve(self, block: _Block, slot: Slot) -> bool:
        group = _CURVE_MODELS.get(block.model_id) or ("Ctl" if block.model_id == 711 else None)
        if group is None or not slot.path.startswith(f"{group}["):
            return False
        index = slot.path.split("]", 1)[0] + "]"
        return bool(self.store.get((block.model_id, f"{index}.ReadOnly")))

    def _check_vendor(self, address: int, values: list[int]) -> PendingWrite | int:
        vmap = self.profile.vendor_map
        assert vmap is not None
        pending = PendingWrite()
        addr = address
        while addr < address + len(values):
            reg = next((r for r in vmap.registers if r.address == addr), None)
            if reg is None or reg.access != "RW" or addr + reg.size > address + len(values):
                return ILLEGAL_VALUE
            raw = _join(values[addr - address : addr - address + reg.size])
            if not self._vendor_value_ok(reg, raw):
                return ILLEGAL_VALUE
            pending.vendor[reg.name] = raw
            addr += reg.size
        return pending

    def _vendor_value_ok(self, reg: VendorRegister, raw: int) -> bool:
        if reg.symbols and raw not in reg.symbols.values():
            return False
        setting = self.profile.setting_for(f"vendor.{reg.name}")
        if setting is not None:
            lo, hi = self.profile.limit(setting.min), self.profile.limit(setting.max)
            if not lo <= raw <= hi:
                return False
        # a tripped isolator must be reset before it closes
        return not (
            reg.name == "command" and raw == 2 and self.vendor["state"] == _ISOLATOR["tripped"]
        )

    def apply(self, pending: PendingWrite) -> None:
        """Apply a checked write; read-back shows it from now on."""
        for key, value in pending.sunspec.items():
            self.store[key] = value
        for (model_id, path), value in pending.sunspec.items():
            if path in ("AdptCrvReq", "AdptCtlReq") and value:
                self._adopt(model_id, path, int(value))
        for name, value in pending.vendor.items():
            if name == "command":
                self._isolator_command(value)
            else:
                self.vendor[name] = value
        if self._state is not None:
            self.render(self._state)

    def _adopt(self, model_id: int, req: str, index: int) -> None:
        """Copy curve ``index`` (1-based) into the active curve 1; report the result."""
        group = "Ctl" if req == "AdptCtlReq" else "Crv"
        rslt = "AdptCtlRslt" if req == "AdptCtlReq" else "AdptCrvRslt"
        src = f"{group}[{index - 1}]."
        dst = f"{group}[0]."
        block = self.block(model_id)
        if not any(s.path.startswith(src) for s in block.lay.slots):
            self.store[(model_id, rslt)] = 2  # FAILED: no such curve
        else:
            if index != 1:
                for slot in block.lay.slots:
                    if slot.path.startswith(src) and not slot.path.endswith("ReadOnly"):
                        path = dst + slot.path[len(src) :]
                        if (model_id, slot.path) in self.store:
                            self.store[(model_id, path)] = self.store[(model_id, slot.path)]
            self.store[(model_id, rslt)] = 1 if self._curve_valid(model_id, dst) else 2
        self.store[(model_id, req)] = 0

    def _curve_valid(self, model_id: int, prefix: str) -> bool:
        if model_id not in (705, 706):
            return True
        n = int(self.store.get((model_id, prefix + "ActPt"), 0))
        raw = [self.store.get((model_id, f"{prefix}Pt[{j}].V")) for j in range(n)]
        xs = [float(x) for x in raw if x is not None]
        return len(xs) == n and all(a <= b for a, b in itertools.pairwise(xs))

    def _isolator_command(self, command: int) -> None:
        state = self.vendor["state"]
        if command == 1 and state == _ISOLATOR["closed"]:
            self.vendor["state"] = _ISOLATOR["open"]
            self.vendor["operation_count"] += 1
        elif command == 2 and state == _ISOLATOR["open"]:
            self.vendor["state"] = _ISOLATOR["closed"]
            self.vendor["operation_count"] += 1
        elif command == 3 and state == _ISOLATOR["tripped"]:
            self.vendor["state"] = _ISOLATOR["open"]
        self.vendor["command"] = 0

    def trip(self) -> None:
        """A protective trip of the isolator (fault ``isolator_trip``)."""
        if self.vendor.get("state") != _ISOLATOR["tripped"]:
            self.vendor["state"] = _ISOLATOR["tripped"]
            self.vendor["trip_count"] += 1
            self.vendor["operation_count"] += 1

    @property
    def isolator_closed(self) -> bool:
        return self.vendor.get("state", _ISOLATOR["closed"]) == _ISOLATOR["closed"]

    # ----- what the device obeys --------------------------------------------------------
    def _get(self, model_id: int, path: str, default: Any = None) -> Any:
        return self.store.get((model_id, path), default)

    def _curve(self, model_id: int, dep: str, legacy: bool) -> tuple[tuple[float, float], ...]:
        v_nom = self.profile.nameplate.get("v_nom", 230.0)
        if legacy:
            active = int(self._get(model_id, "ActCrv", 1)) - 1
            p = f"curve[{active}]."
            n = int(self._get(model_id, p + "ActPt", 0))
            pts = [
                (self._get(model_id, f"{p}V{j}"), self._get(model_id, f"{p}{dep}{j}"))
                for j in range(1, n + 1)
            ]
        else:
            n = int(self._get(model_id, "Crv[0].ActPt", 0))
            pts = [
                (
                    self._get(model_id, f"Crv[0].Pt[{j}].V"),
                    self._get(model_id, f"Crv[0].Pt[{j}].{dep}"),
                )
                for j in range(n)
            ]
            pts = [(None if v is None else v * v_nom / 100.0, y) for v, y in pts]
        clean = tuple((float(v), float(y)) for v, y in pts if v is not None and y is not None)
        return tuple(sorted(clean))

    def inverter_controls(self) -> InverterControls | None:
        """What this device makes the PV inverter obey, or ``None`` if it is no inverter."""
        models = set(self.profile.models)
        if self.profile.kind not in ("inverter", "hybrid_inverter"):
            return None
        connected, limit_pct, limit_on = True, 100.0, False
        volt_watt = volt_var = None
        if 123 in models:
            connected = int(self._get(123, "Conn", 1)) == 1
            limit_pct = float(self._get(123, "WMaxLimPct", 100))
            limit_on = int(self._get(123, "WMaxLim_Ena", 0)) == 1
        if 704 in models:
            limit_pct = float(self._get(704, "WMaxLimPct", 100))
            limit_on = int(self._get(704, "WMaxLimPctEna", 0)) == 1
        if 121 in models or 702 in models:
            model = 121 if 121 in models else 702
            w_max = float(self._get(model, "WMax", self.profile.nameplate.get("w_rtg", 5000.0)))
            w_rtg = self.profile.nameplate.get("w_rtg", 5000.0)
            if w_max < w_rtg:
                cap = 100.0 * w_max / w_rtg
                limit_pct = min(limit_pct, cap) if limit_on else cap
                limit_on = True
        volt_watt_rsp_s, of_available = 0.0, False
        if 132 in models and int(self._get(132, "ModEna", 0)) & 1:
            volt_watt = self._curve(132, "W", legacy=True) or None
        if 706 in models and int(self._get(706, "Ena", 0)) == 1:
            volt_watt = self._curve(706, "W", legacy=False) or None
            volt_watt_rsp_s = float(self._get(706, "Crv[0].RspTms", 0) or 0)
            of_available = int(self._get(706, "Crv[0].DeptRef", 0)) == 1  # W_AVAL_PCT
        if 126 in models and int(self._get(126, "ModEna", 0)) & 1:
            volt_var = self._volt_var(126)
        if 705 in models and int(self._get(705, "Ena", 0)) == 1:
            volt_var = self._volt_var(705)
        return InverterControls(
            connected,
            limit_pct,
            limit_on,
            volt_watt,
            volt_var,
            volt_watt_rsp_s=volt_watt_rsp_s,
            volt_watt_of_available=of_available,
            droop=self._droop(),
            va_max=self._rating(702, "VAMax", 121, "VAMax", "va_rtg"),
        )

    def _rating(self, der: int, der_point: str, legacy: int, legacy_point: str, key: str) -> float:
        """A rating as set on the device (702 or 121), else its nameplate's."""
        w_rtg = self.profile.nameplate.get("w_rtg", 5000.0)
        fallback = self.profile.nameplate.get(key, w_rtg if key != "var_rtg" else 3000.0)
        for model_id, point in ((der, der_point), (legacy, legacy_point)):
            if model_id in self.profile.models and self._get(model_id, point) is not None:
                return abs(float(self._get(model_id, point)))
        return fallback

    def _volt_var(self, model_id: int) -> VoltVar | None:
        """The active volt-var curve with its reference in var (705 / 126 ``DeptRef``),
        response time and priority; ``None`` if it has no points."""
        curve = self._curve(model_id, "Var" if model_id == 705 else "VAr", model_id == 126)
        if not curve:
            return None
        w_max = self._rating(702, "WMax", 121, "WMax", "w_rtg")
        var_max = self._rating(702, "VarMaxInj", 121, "VArMaxQ1", "var_rtg")
        va_max = self._rating(702, "VAMax", 121, "VAMax", "va_rtg")
        if model_id == 705:
            # 705 DeptRef: 0 W_MAX_PCT, 1 VAR_MAX_PCT, 2 VAR_AVAL_PCT, 3 VA_MAX_PCT
            refs: dict[int, float | None] = {0: w_max, 1: var_max, 2: None, 3: va_max}
            dept = int(self._get(705, "Crv[0].DeptRef", 1))
            rsp_s = float(self._get(705, "Crv[0].RspTms", 0) or 0)
            q_priority = int(self._get(705, "Crv[0].Pri", 0)) == 1  # REACTIVE
        else:
            # 126 DeptRef: 1 WMax, 2 VArMax, 3 VArAval (no VA reference in 1xx)
            refs = {1: w_max, 2: var_max, 3: None}
            active = int(self._get(126, "ActCrv", 1)) - 1
            dept = int(self._get(126, f"curve[{active}].DeptRef", 2))
            rsp_s, q_priority = 0.0, False
        return VoltVar(curve, refs.get(dept, var_max), rsp_s, q_priority)

    def _droop(self) -> FreqDroop | None:
        """The active frequency-droop control (711 ``Ctl[0]``) when enabled."""
        if 711 not in self.profile.models or int(self._get(711, "Ena", 0)) != 1:
            return None

        def num(name: str) -> float:
            return float(self._get(711, f"Ctl[0].{name}", 0) or 0)

        return FreqDroop(
            db_of_hz=num("DbOf"),
            db_uf_hz=num("DbUf"),
            k_of=num("KOf"),
            k_uf=num("KUf"),
            pmin_pct=num("PMin"),
            rsp_s=num("RspTms"),
        )

    def trips(self, state: PlantState) -> bool:
        """True while a declared trip curve (707-710) says the inverter must cease."""
        v_pct = 100.0 * state.v / self.profile.nameplate.get("v_nom", 230.0)
        checks = {
            707: (v_pct, "V", min),
            708: (v_pct, "V", max),
            709: (state.hz, "Hz", min),
            710: (state.hz, "Hz", max),
        }
        for model_id, (x, unit, _) in checks.items():
            if model_id not in self.profile.models or int(self._get(model_id, "Ena", 0)) != 1:
                continue
            limit = self._get(model_id, f"Crv[0].MustTrip.Pt[0].{unit}")
            if limit is None:
                continue
            if (model_id in (707, 709) and x < limit) or (model_id in (708, 710) and x > limit):
                return True
        return False

    def battery_controls(self) -> BatteryControls | None:
        """What this device makes the battery obey, or ``None``."""
        models = set(self.profile.models)
        np_ = self.profile.nameplate
        if 124 in models or 802 in models:
            mode = int(self._get(124, "StorCtl_Mod", 0))
            w_cha = float(self._get(124, "WChaMax", np_.get("max_charge_w", 5000.0)))
            setpoint: float | None = None
            if mode & 1:
                setpoint = -w_cha * float(self._get(124, "InWRte", 0)) / 100.0
            if mode & 2:
                setpoint = w_cha * float(self._get(124, "OutWRte", 0)) / 100.0
            return BatteryControls(
                connected=int(self._get(802, "SetOp", 1)) == 1,
                setpoint_w=setpoint,
                min_reserve_pct=float(self._get(124, "MinRsvPct", self._get(802, "SoCRsvMin", 10))),
                max_charge_w=w_cha,
            )
        if 713 in models and 704 in models:
            setpoint = None
            if int(self._get(704, "WSetEna", 0)) == 1:
                setpoint = float(self._get(704, "WSet", 0))
            return BatteryControls(setpoint_w=setpoint)
        return None


def _join(words: list[int]) -> int:
    """Registers, high word first, as one unsigned number."""
    return int.from_bytes(b"".join(w.to_bytes(2, "big") for w in words), "big")


def _vendor_value(reg: VendorRegister, raw: int) -> int:
    """Engineering value of a vendor register's unsigned raw value (two's complement)."""
    bits = 16 * reg.size
    signed = reg.type.startswith("int") and raw >= 1 << (bits - 1)
    return raw - (1 << bits) if signed else raw
