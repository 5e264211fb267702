"""Device profiles: shipped profiles load; bad ones name the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from device_profiles import (
    BUILTIN_DIR,
    ProfileError,
    builtin_profile,
    builtin_profiles,
    load_profile,
)
from device_profiles.sunspec_codec import model_def
from potr import cli_profiles


def _base() -> dict[str, Any]:
    return yaml.safe_load((BUILTIN_DIR / "sim-inverter-103.yaml").read_text())


def _write(tmp_path: Path, data: Any, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_every_shipped_profile_loads() -> None:
    profiles = builtin_profiles()
    assert {
        "sim-inverter-103",
        "sim-inverter-113",
        "sim-der-inverter",
        "sim-hybrid-inverter",
        "sim-battery",
        "sim-meter-201",
        "sim-meter-203",
        "sim-isolator",
    } <= profiles.keys()
    for profile in profiles.values():
        assert not profile.models or profile.models[0] == 1


def test_every_settings_point_is_writable_in_sunspec() -> None:
    for profile in builtin_profiles().values():
        for setting in profile.settings:
            model, _, path = setting.point.partition(".")
            if model != "vendor":
                pdef = model_def(int(model)).find(path)
                assert pdef is not None, setting.point
                assert pdef.writable, setting.point


def test_meters_state_their_sign() -> None:
    assert builtin_profile("sim-meter-203").meter_sign == "import_positive"
    meter = builtin_profile("sim-meter-201")
    assert meter.meter_sign == "export_positive"
    assert next(m for m in meter.metrics if m.metric == "grid_w").sign == -1


def test_nameplate_limits_resolve() -> None:
    profile = builtin_profile("sim-inverter-103")
    setting = profile.setting("w_max")
    assert setting is not None
    assert profile.limit(setting.max) == 5000


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        (lambda d: d["models"].append(999), "models[9]", "no SunSpec model 999"),
        (lambda d: d.update(models=[103, 1]), "models[0]", "common model 1"),
        (
            lambda d: d["metrics"].append({"metric": "pv_w2", "source": "103.W"}),
            "metrics[16].metric",
            "unknown metric 'pv_w2'",
        ),
        (
            lambda d: d["metrics"].append({"metric": "grid_w", "source": "103.Watts"}),
            "metrics[16].source",
            "no point 'Watts'",
        ),
        (
            lambda d: d["metrics"].append({"metric": "grid_w", "source": "203.W"}),
            "metrics[16].source",
            "model 203 is not in models",
        ),
        (
            lambda d: d["settings"].append({"name": "x", "point": "103.W", "min": 0, "max": 1}),
            "settings[11].point",
            "read-only",
        ),
        (
            lambda d: d["settings"].append(
                {"name": "x", "point": "123.WMaxLimPct", "min": 0, "max": "nameplate.nope"}
            ),
            "settings[11].max",
            "no such key in nameplate",
        ),
        (lambda d: d.update(colour="red"), "colour", "Extra inputs"),
        (lambda d: d.update(kind="toaster"), "kind", "Input should be"),
        (lambda d: d.update(meter_sign="import_positive"), "meter_sign", "only meters"),
        (
            lambda d: d["commands"][0]["writes"].append({"point": "123.Conn", "arg": "zz"}),
            "commands[0].writes[1].arg",
            "no argument 'zz'",
        ),
        (
            lambda d: d["group_counts"].update({126: {"NCrv": 2}}),
            "group_counts.126.NCrv",
            "no repeating group",
        ),
        (
            lambda d: d["metrics"].append({"metric": "pv_w", "source": "vendor.state"}),
            "metrics[16].source",
            "no vendor_map",
        ),
        (
            lambda d: d["commands"][0].update(requires=[{"point": "123.Nope", "values": [1]}]),
            "commands[0].requires[0].point",
            "no point 'Nope'",
        ),
        (
            lambda d: d["commands"][0].update(requires=[{"point": "123.Conn", "values": []}]),
            "commands[0].requires[0].values",
            "at least 1",
        ),
    ],
)
def test_bad_profile_names_file_key_and_reason(
    tmp_path: Path, mutate: Any, key: str, reason: str
) -> None:
    data = _base()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.file == str(path)
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(path) in str(info.value)


_INV_ST = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 7, 7: 8}


@pytest.mark.parametrize(
    ("mapping", "reason"),
    [
        (
            {"source": "701.InvSt", "codes": {k: v for k, v in _INV_ST.items() if k != 1}},
            "no code for SLEEPING",
        ),
        ({"source": "701.InvSt", "codes": _INV_ST | {9: 9}}, "[9] are not values"),
        ({"source": "701.W", "codes": {0: 1}}, "codes need an enumerated point"),
        ({"source": "701.InvSt", "codes": _INV_ST, "sign": -1}, "no sign or scale"),
    ],
)
def test_a_code_table_translates_exactly_the_points_enumeration(
    tmp_path: Path, mapping: dict[str, Any], reason: str
) -> None:
    data = yaml.safe_load((BUILTIN_DIR / "sim-der-inverter.yaml").read_text())
    data["metrics"] = [m for m in data["metrics"] if m["metric"] != "pv_state_code"]
    data["metrics"].append({"metric": "pv_state_code", **mapping})
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, data))
    assert info.value.key.startswith(f"metrics[{len(data['metrics']) - 1}]")
    assert reason in info.value.reason


def test_vendor_registers_must_not_overlap(tmp_path: Path) -> None:
    data = yaml.safe_load((BUILTIN_DIR / "sim-isolator.yaml").read_text())
    data["vendor_map"]["registers"][1]["address"] = 100
    with pytest.raises(ProfileError, match="overlaps"):
        load_profile(_write(tmp_path, data))


def test_unparsable_yaml_is_refused_with_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML") as info:
        load_profile(path)
    assert info.value.file == str(path)


def _cli() -> typer.Typer:
    app = typer.Typer()
    cli_profiles.register(app)

    @app.callback()
    def _root() -> None: ...

    return app


def test_cli_lists_shows_and_validates() -> None:
    runner = CliRunner()
    listed = runner.invoke(_cli(), ["profiles", "list"])
    assert listed.exit_code == 0, listed.output
    assert "sim-isolator" in listed.output
    shown = runner.invoke(_cli(), ["profiles", "show", "sim-battery"])
    assert shown.exit_code == 0
    assert yaml.safe_load(shown.output)["models"] == [1, 802, 124, 701]
    assert runner.invoke(_cli(), ["profiles", "validate"]).exit_code == 0


def test_cli_validate_fails_on_a_bad_profile(tmp_path: Path) -> None:
    data = _base()
    data["models"].append(4242)
    path = _write(tmp_path, data)
    result = CliRunner().invoke(_cli(), ["profiles", "validate", str(path)])
    assert result.exit_code == 1
    assert "4242" in result.output


def _isolator() -> dict[str, Any]:
    return yaml.safe_load((BUILTIN_DIR / "sim-isolator.yaml").read_text())


def test_the_isolator_profile_says_which_state_raises_which_event() -> None:
    rule = builtin_profile("sim-isolator").state_events
    assert rule is not None
    assert rule.metric == "isolator_state_code"
    # The vendor map's symbols: OPEN 0, CLOSED 1, TRIPPED 2.
    assert [rule.event_for(v) for v in (0, 1, 2, 3)] == [
        "isolator_opened",
        "isolator_closed",
        "isolator_tripped",
        None,
    ]


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        (
            lambda d: d["state_events"].update(metric="pv_w"),
            "state_events.metric",
            "'pv_w' is not mapped in metrics",
        ),
        (
            lambda d: d["state_events"]["events"].append({"value": 3, "event": "device_asleep"}),
            "state_events.events[3]",
            "device_asleep is no state event",
        ),
        (
            lambda d: d["state_events"]["events"].append({"value": 3, "event": "isolator_ajar"}),
            "state_events.events[3].event",
            "Input should be",
        ),
        (
            lambda d: d["state_events"]["events"].append({"value": 2, "event": "isolator_opened"}),
            "state_events",
            "one event only",
        ),
        (lambda d: d["state_events"].update(events=[]), "state_events.events", "at least 1"),
    ],
)
def test_bad_state_events_name_the_key_and_reason(
    tmp_path: Path, mutate: Any, key: str, reason: str
) -> None:
    data = _isolator()
    mutate(data)
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, data))
    assert info.value.key == key
    assert reason in info.value.reason
