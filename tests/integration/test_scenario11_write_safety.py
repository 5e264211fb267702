"""Reliability scenario 11: write safety, as a property over signed documents.

Hypothesis draws commands and configs — in range, out of range, NaN/inf, strings,
booleans, null, lists, objects, huge integers, unknown devices, settings and commands —
signs them directly with the trusted key (no API in between, so every refusal must come
from the agent) and sends them to ONE running agent over real Mosquitto; the devices are
simulated over real Modbus TCP. Every document gets an answer; every refusal a reason.
At the end the simulator's own write log must hold no value outside the profile's limits,
and no refused document may have caused any write.

Reduced form: 200 examples (derandomised). Full form (``POTR_CHAOS_FULL=1``): 1,000
examples from a random seed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.signing import SigningKey
from device_profiles import builtin_profile
from device_profiles.schema import DeviceProfile
from tests.integration.control_harness import ThreadedRig, signed_payload

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.security]

PROFILES = {1: "sim-der-inverter", 3: "sim-battery", 4: "sim-isolator"}
FULL = os.environ.get("POTR_CHAOS_FULL") == "1"
EXAMPLES = 1000 if FULL else 200
SETTING_NAMES = sorted(
    {s.name for p in PROFILES.values() for s in builtin_profile(p).settings} | {"bogus_setting"}
)
COMMAND_NAMES = sorted(
    {c.name for p in PROFILES.values() for c in builtin_profile(p).commands}
    | {"ping", "bogus", "rescan_all"}
)

scalars = st.one_of(
    st.integers(-200, 200),
    st.floats(-200, 200),
    st.sampled_from([math.nan, math.inf, -math.inf, 10**30, -(10**40), 2**63]),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)
values = st.one_of(
    scalars,
    scalars,
    st.lists(st.one_of(st.integers(40, 160), st.floats(-120, 160)), min_size=0, max_size=6),
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)


def _device(rig: ThreadedRig) -> st.SearchStrategy[Any]:
    return st.sampled_from([*rig.ids.values(), "NOT-A-DEVICE", None])


@st.composite
def command_docs(draw: st.DrawFn, rig: ThreadedRig) -> tuple[dict[str, Any], bytes]:
    name = draw(st.sampled_from(COMMAND_NAMES))
    device = draw(_device(rig))
    args = draw(st.dictionaries(st.sampled_from(["pct", "curve", "w", "x"]), values, max_size=2))
    doc = rig.cloud.command(name, device, args, sign=False)
    return doc, signed_payload(doc, rig.key)


@st.composite
def config_docs(draw: st.DrawFn, rig: ThreadedRig) -> tuple[dict[str, Any], bytes]:
    devices = draw(
        st.dictionaries(
            st.sampled_from([*rig.ids.values(), "NOT-A-DEVICE"]),
            st.dictionaries(st.sampled_from(SETTING_NAMES), values, min_size=1, max_size=3),
            max_size=2,
        )
    )
    doc = rig.cloud.config(devices, sign=False)
    return doc, signed_payload(doc, rig.key)


def _parses(payload: bytes) -> bool:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return True


def _refusals(rig: ThreadedRig) -> int:
    return sum(rig.agent.control.stats.refusals.values())


def _limits(profile: DeviceProfile, ref: str) -> tuple[float, float] | None:
    import re

    setting = profile.setting_for(re.sub(r"\[\d+\]", "", ref))
    if setting is None:
        return None
    return profile.limit(setting.min), profile.limit(setting.max)


def _outside_limits(rig: ThreadedRig) -> list[str]:
    """Every logged point value outside its profile setting's limits (or undecodable)."""
    bad = []
    for record in rig.site.write_log:
        profile = builtin_profile(PROFILES[record.unit_id])
        for ref, value in record.points.items():
            limits = _limits(profile, ref)
            if limits is None:
                continue  # not a setting (ActPt): the device checks it
            if value is None or not limits[0] - 1e-9 <= value <= limits[1] + 1e-9:
                bad.append(f"unit {record.unit_id} {ref}={value!r} outside {limits}")
    return bad


@pytest.fixture
def rig(mosquitto_url: str, tmp_path: Path) -> Any:
    with ThreadedRig(mosquitto_url, tmp_path, SigningKey.generate()) as running:
        yield running


def _refused_config(state: dict[str, Any]) -> bool:
    return state["detail"].startswith("refused config") or (
        state["status"] == "failed" and state["points"] == {}
    )


def test_no_write_outside_profile_limits_whatever_is_signed(rig: ThreadedRig) -> None:
    examples = {"n": 0, "refused": 0, "written": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not FULL,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def one_document(data: st.DataObject) -> None:
        examples["n"] += 1
        kind = data.draw(st.sampled_from(["cmd", "cmd", "config"]))
        before = len(rig.site.write_log)
        doc, payload = data.draw(command_docs(rig) if kind == "cmd" else config_docs(rig))
        if kind == "cmd" and not _parses(payload):
            # No id can be read from it: refused with a log line and a metric, no ack.
            # The control task handles documents in order: a ping answered after it
            # means it was handled.
            counted = _refusals(rig)
            rig.call(rig.cloud.send("cmd", payload))
            assert rig.call(rig.cloud.command_result(rig.cloud.command("ping", None)))
            assert _refusals(rig) == counted + 1
            refused = True
        elif kind == "cmd":
            ack = rig.call(rig.cloud.command_result(doc | {"payload": payload}))
            refused = ack["status"] in ("rejected", "expired")
            if ack["status"] != "done":
                assert ack["detail"], ack
        else:
            state = rig.call(rig.cloud.config_result(payload))
            assert state["version"] == doc["version"] or _refused_config(state), state
            if not _parses(payload):
                assert state["detail"].startswith("refused config: schema-invalid"), state
            refused = _refused_config(state)
            if state["status"] != "applied":
                assert state["detail"], state
        if refused:
            examples["refused"] += 1
            assert len(rig.site.write_log) == before, (doc, rig.site.write_log[before:])
        else:
            examples["written"] += 1

    one_document()
    assert examples["n"] >= 200
    assert examples["refused"] > 0
    assert examples["written"] > 0, "no example reached a device: the property is vacuous"
    assert _outside_limits(rig) == []
    assert rig.agent.control.stats.refusals  # counted for /metrics
