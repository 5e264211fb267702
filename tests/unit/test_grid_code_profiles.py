"""Grid-code profiles: inheritance, refusals naming file/key/limit, the SunSpec map checked
against pysunspec2, and profiles turned into device settings (expected values by hand)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from sunspec2.device import get_model_def
from typer.testing import CliRunner

from device_profiles import builtin_profile
from device_profiles.grid_code import (
    GRID_CODE_DIR,
    GridCodeError,
    builtin_grid_code,
    builtin_grid_codes,
    diff_grid_codes,
    load_grid_codes,
    rollout_refusal,
)
from device_profiles.grid_code_sunspec import (
    SUNSPEC_MAP_FILE,
    device_settings,
    expand_point,
    load_sunspec_map,
)
from device_profiles.loader import parse_profile
from device_profiles.setpoints import validate_config_devices
from edge_agent.setpoint_codec import set_kind, set_path
from potr import cli_profiles


# ----- helpers ---------------------------------------------------------------------------
def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "grid_codes"
    shutil.copytree(GRID_CODE_DIR, folder)
    return folder


def _edit(folder: Path, name: str, change: Any) -> Path:
    path = folder / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def _refused(folder: Path) -> GridCodeError:
    with pytest.raises(GridCodeError) as info:
        load_grid_codes(folder)
    return info.value


# ----- inheritance ------------------------------------------------------------------------
def test_a_child_inherits_and_overrides_and_remembers_where_each_value_is_from() -> None:
    c2024 = builtin_grid_code("au-c-2024")
    assert c2024.lineage == ("au-a-2020", "au-c-2020")
    assert Path(c2024.values["trip.lv"].file).name == "au-a-2020.yaml"  # inherited from A
    assert Path(c2024.values["volt_var.curve"].file).name == "au-c-2024.yaml"  # overridden
    assert c2024.nominal_v == 230  # not restated in the child
    assert c2024.standard == "as-nzs-4777.2-2020-amd2-2024"  # restated


def test_unset_drops_an_inherited_value_that_does_not_apply() -> None:
    assert "ride_through.lv" in builtin_grid_code("ieee1547-2018-b-ii").values
    assert "ride_through.lv" not in builtin_grid_code("ieee1547-2018-b-i").values


def test_an_inheritance_cycle_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "au-a-2020.yaml", lambda d: d.update(extends="au-b-2020"))
    err = _refused(folder)
    assert err.key == "extends"
    assert "cycle" in err.reason


def test_an_unknown_parent_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = _edit(folder, "au-b-2020.yaml", lambda d: d.update(extends="au-z-2020"))
    err = _refused(folder)
    assert (err.file, err.key) == (str(path), "extends")


def test_diff_names_changed_values_with_provenance() -> None:
    changes = {
        c.key: c
        for c in diff_grid_codes(builtin_grid_code("au-a-2020"), builtin_grid_code("au-b-2020"))
    }
    assert set(changes) == {
        "volt_var.curve",
        "volt_watt.curve",  # same values, different source and confidence
        "volt_watt.storage_charge_curve",
        "freq_response.f_llco_hz",
        "freq_response.f_ulco_hz",
    }
    b = changes["volt_var.curve"].b
    assert b is not None
    assert b.provenance.source == "Western Power"


# ----- refusals: file, key and limit ------------------------------------------------------
def _set(key: str, **fields: Any) -> Any:
    return lambda d: d["settings"][key].update(fields)


@pytest.mark.parametrize(
    ("file", "change", "key", "limit"),
    [
        # outside the range the standard allows (IEEE 1547.1 Table 11: V_hi 1.05-1.06 pu)
        (
            "ieee1547-2018-b-ii.yaml",
            _set("enter_service.v_hi", value=1.07),
            "settings.enter_service.v_hi.value",
            "1.05-1.06 pu",
        ),
        # AS/NZS 4777.2 sustained over-voltage adjustable 244-258 V
        (
            "au-a-2020.yaml",
            _set("sustained_ov.v", value=260),
            "settings.sustained_ov.v.value",
            "244-258 V",
        ),
        # the generic bounds of the key (Q within ±100 % of rated VA)
        (
            "au-a-2020.yaml",
            _set("volt_var.curve", value=[[207, 120], [220, 0]]),
            "settings.volt_var.curve.value[0][1]",
            "-100-100 %VA",
        ),
        # IEEE 1547 OF trip range 61.0-66 Hz
        (
            "ieee1547-2018-b-ii.yaml",
            _set("trip.hf", value=[[60.5, 300], [62, 0.16]]),
            "settings.trip.hf.value[0][0]",
            "61-66 Hz",
        ),
        # EN 50549-1 droop 2-12 %
        (
            "es-en50549-1.yaml",
            _set("freq_droop.k_of_pct", value=15),
            "settings.freq_droop.k_of_pct.value",
            "2-12 %",
        ),
        # a unit mismatch: a frequency trip given in volts
        ("au-a-2020.yaml", _set("trip.lf", unit=["V", "s"]), "settings.trip.lf.unit", "'Hz'"),
        (
            "au-a-2020.yaml",
            _set("sustained_ov.v", unit="Hz"),
            "settings.sustained_ov.v.unit",
            "'V' or 'pu'",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_file_key_and_limit(
    tmp_path: Path, file: str, change: Any, key: str, limit: str
) -> None:
    folder = _copy(tmp_path)
    path = _edit(folder, file, change)
    err = _refused(folder)
    assert err.file == str(path)
    assert err.key == key
    assert limit in err.reason


def test_an_unknown_key_and_a_value_without_provenance_are_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = _edit(
        folder,
        "au-a-2020.yaml",
        lambda d: d["settings"].update({"volt_var.gain": {"value": 1, "ref": "tesla-h"}}),
    )
    err = _refused(folder)
    assert (err.file, err.key) == (str(path), "settings.volt_var.gain")
    folder = _copy(tmp_path / "again")
    _edit(folder, "au-a-2020.yaml", lambda d: d["settings"]["sustained_ov.v"].pop("ref"))
    err = _refused(folder)
    assert err.key == "settings.sustained_ov.v"
    assert "provenance" in err.reason


def test_a_1547_profile_must_name_both_categories(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "ieee1547-2018-b-ii.yaml", lambda d: d.pop("abnormal_category"))
    assert _refused(folder).key == "normal_category"


# ----- the SunSpec map --------------------------------------------------------------------
def _pysunspec2_access(model_id: int, path: str) -> str | None:
    """The access of a point straight from pysunspec2's model JSON (None: no such point)."""
    group = get_model_def(model_id)["group"]
    *groups, name = path.split(".")
    for part in groups:
        group = next((g for g in group.get("groups", []) if g["name"] == part), None)
        if group is None:
            return None
    point = next((p for p in group.get("points", []) if p["name"] == name), None)
    return None if point is None else str(point.get("access", "R"))


def _mapped_points() -> list[str]:
    points = []
    for fmap in load_sunspec_map().values():
        for family in (fmap.family_7xx, fmap.family_1xx):
            if family is None:
                continue
            for ref in (*family.points, *family.optional):
                points.extend({expand_point(ref, 1), expand_point(ref, 20)})
    return sorted(set(points))


@pytest.mark.parametrize("ref", _mapped_points())
def test_every_mapped_point_exists_and_is_writable_in_pysunspec2(ref: str) -> None:
    model, path = ref.split(".", 1)
    assert _pysunspec2_access(int(model), path) == "RW"


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        ("705.Crv.Pt.Vx", "has no point 'Crv.Pt.Vx'"),
        ("705.AdptCrvRslt", "read-only"),  # the adoption result is the device's to write
        ("705.NPt", "read-only"),
        ("4242.X", "no SunSpec model 4242"),
    ],
)
def test_an_unknown_or_read_only_point_is_refused(tmp_path: Path, point: str, reason: str) -> None:
    data = yaml.safe_load(SUNSPEC_MAP_FILE.read_text())
    data["volt_var"]["7xx"]["points"][point] = "volt_var.curve.x"
    path = tmp_path / "_sunspec.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(GridCodeError) as info:
        load_sunspec_map(path)
    assert info.value.file == str(path)
    assert info.value.key == f"volt_var.7xx.points.{point}"
    assert reason in info.value.reason


# ----- device settings ----------------------------------------------------------------------
DER = builtin_profile("sim-der-inverter")


def _approx(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: pytest.approx(v) for k, v in settings.items()}


def test_au_a_on_a_7xx_device() -> None:
    result = device_settings(builtin_grid_code("au-a-2020"), DER)
    # computed by hand from grid-codes.md §1 region A, VNom 230 V, nominal 50 Hz
    assert result.settings == _approx(
        {
            "volt_var_v_pct": [207 / 2.3, 220 / 2.3, 240 / 2.3, 258 / 2.3],  # 90.0 … 112.17
            "volt_var_dept_ref": 3,  # Q in % of rated VA: 705 DeptRef VA_MAX_PCT
            "volt_var_q_pct": [44, 0, 0, -60],
            "volt_var_enable": 1,
            "volt_watt_v_pct": [253 / 2.3, 260 / 2.3],  # 110.0, 113.04
            "volt_watt_p_pct": [100, 20],
            "volt_watt_enable": 1,
            "freq_droop_db_of_hz": 0.25,  # fULCO 50.25 - 50
            "freq_droop_k_of": 0.035,  # (fPmin 52 - fULCO 50.25) / 50, per unit
            "freq_droop_db_uf_hz": 0.25,  # 50 - fLLCO 49.75
            "freq_droop_k_uf": 0.035,  # (fLLCO 49.75 - fPmax 48) / 50
            "trip_lv_must_v_pct": [180 / 2.3, 70 / 2.3],
            "trip_lv_must_s": [11, 2],
            "trip_hv_must_v_pct": [265 / 2.3, 275 / 2.3],
            "trip_hv_must_s": [2, 0.2],
            "trip_lf_must_hz": [47],
            "trip_lf_must_s": [2],
            "trip_hf_must_hz": [52],
            "trip_hf_must_s": [0.2],
            "enter_service_hz_hi": 50.15,
            "enter_service_ramp_s": 360,
        }
    )
    assert set(result.functions.values()) == {"7xx"}
    assert set(result.unmapped) == {"volt_watt.storage_charge_curve", "sustained_ov.v"}
    validate_config_devices({"inv": result.settings}, {"inv": DER}, {"inv": {}})


@pytest.mark.parametrize("profile_id", sorted(builtin_grid_codes()))
def test_every_profile_gives_settings_the_config_path_accepts(profile_id: str) -> None:
    result = device_settings(builtin_grid_code(profile_id), DER)
    assert result.settings
    checked = validate_config_devices({"inv": result.settings}, {"inv": DER}, {"inv": {}})
    assert {s.point for s in checked["inv"]} == set(result.points.values())


def test_a_us_profile_writes_pu_as_percent() -> None:
    result = device_settings(builtin_grid_code("heco-b"), DER)
    assert result.settings["volt_var_v_pct"] == pytest.approx([92, 98, 102, 108])
    assert result.settings["trip_hf_must_hz"] == pytest.approx([63, 65])
    assert result.settings["freq_droop_k_of"] == pytest.approx(0.04)  # 4 %
    assert result.settings["freq_droop_response_s"] == pytest.approx(0.5)
    assert result.settings["enter_service_v_hi_pct"] == pytest.approx(110)
    assert result.settings["trip_lv_mom_cess_v_pct"] == pytest.approx([50])


_LEGACY = {
    "name": "test-legacy-inverter",
    "kind": "inverter",
    "manufacturer": "Test",
    "model": "LEGACY",
    "models": [1, 113, 120, 121, 123, 126, 132, 145],
    "group_counts": {126: {"curve": 2}, 132: {"curve": 2}},
    "nameplate": {"w_rtg": 5000, "va_rtg": 5000, "var_rtg": 3000},
    "settings": [
        {"name": "limit_pct", "point": "123.WMaxLimPct", "min": 0, "max": 100},
        {"name": "limit_ena", "point": "123.WMaxLim_Ena", "min": 0, "max": 1},
        {"name": "vv_ena", "point": "126.ModEna", "min": 0, "max": 1},
        {"name": "vv_n", "point": "126.curve.ActPt", "min": 1, "max": 20},
        *(
            {"name": f"vv_v{i}", "point": f"126.curve.V{i}", "min": 50, "max": 150}
            for i in range(1, 5)
        ),
        *(
            {"name": f"vv_q{i}", "point": f"126.curve.VAr{i}", "min": -100, "max": 100}
            for i in range(1, 5)
        ),
        {"name": "vw_ena", "point": "132.ModEna", "min": 0, "max": 1},
        {"name": "vw_n", "point": "132.curve.ActPt", "min": 1, "max": 20},
        *({"name": f"vw_v{i}", "point": f"132.curve.V{i}", "min": 50, "max": 150} for i in (1, 2)),
        *({"name": f"vw_p{i}", "point": f"132.curve.W{i}", "min": 0, "max": 100} for i in (1, 2)),
        {"name": "conn_ramp", "point": "145.ConnRmpUpRte", "min": 0, "max": 100},
    ],
}


def test_au_a_sapn_on_a_1xx_device() -> None:
    legacy = parse_profile(_LEGACY, "test-legacy-inverter")
    result = device_settings(builtin_grid_code("au-a-2020-sapn-fixed"), legacy, phases=1)
    assert result.settings == _approx(
        {
            "vv_v1": 207 / 2.3,
            "vv_v2": 220 / 2.3,
            "vv_v3": 240 / 2.3,
            "vv_v4": 258 / 2.3,
            # % rated VA → % VArMax (126 has no VA reference): Q x 5000 VA / 3000 var
            "vv_q1": 44 * 5 / 3,
            "vv_q2": 0,
            "vv_q3": 0,
            "vv_q4": -100,
            "vv_n": 4,
            "vv_ena": 1,
            "vw_v1": 253 / 2.3,
            "vw_v2": 260 / 2.3,
            "vw_p1": 100,
            "vw_p2": 20,
            "vw_n": 2,
            "vw_ena": 1,
            "conn_ramp": 100 / 360,  # 6 minutes to full power, % per second
            "limit_pct": 1500 / 5000 * 100,  # 1.5 kW/phase on one phase of a 5 kW inverter
            "limit_ena": 1,
        }
    )
    assert set(result.functions.values()) == {"1xx"}
    # the device has none of the trip or droop models
    assert {"trip_lv", "trip_hv", "trip_lf", "trip_hf", "freq_droop"} <= set(result.unmapped)
    validate_config_devices({"inv": result.settings}, {"inv": legacy}, {"inv": {}})


def test_a_three_phase_site_multiplies_a_per_phase_export_limit() -> None:
    legacy = parse_profile(_LEGACY, "test-legacy-inverter")
    result = device_settings(
        builtin_grid_code("au-a-2020-sapn-fixed"), legacy, phases=3, nameplate={"w_rtg": 10000}
    )
    assert result.settings["limit_pct"] == pytest.approx(45)  # 3 x 1500 W of 10 kW


def test_7xx_models_are_preferred_over_1xx() -> None:
    both = parse_profile(
        _LEGACY
        | {
            "name": "test-both",
            "models": [*_LEGACY["models"], 705],
            "group_counts": _LEGACY["group_counts"] | {705: {"NCrv": 2, "NPt": 4}},
            "settings": [
                *_LEGACY["settings"],
                {"name": "der_v", "point": "705.Crv.Pt.V", "min": 50, "max": 150},
                {"name": "der_q", "point": "705.Crv.Pt.Var", "min": -100, "max": 100},
            ],
        },
        "test-both",
    )
    result = device_settings(builtin_grid_code("au-b-2020"), both)
    assert result.functions["volt_var"] == "7xx"
    assert result.settings["der_q"] == pytest.approx([30, 0, 0, -40])
    assert "vv_v1" not in result.settings


def test_a_function_is_left_out_whole_when_a_point_has_no_setting() -> None:
    partial = parse_profile(
        _LEGACY | {"settings": [s for s in _LEGACY["settings"] if s["name"] != "vv_q4"]},
        "test-legacy-inverter",
    )
    result = device_settings(builtin_grid_code("au-a-2020"), partial)
    assert "volt_var" in result.unmapped
    assert not [k for k in result.settings if k.startswith("vv_")]  # no half curve, no enable


def test_sin_excedentes_never_writes_the_export_limit_to_the_inverter() -> None:
    result = device_settings(builtin_grid_code("es-en50549-1-sin-excedentes"), DER)
    assert "power_limit_pct" not in result.settings
    assert "anti-export device" in result.unmapped["export_limit"]


# ----- rollouts and registration data -----------------------------------------------------
def test_a_rollout_never_changes_the_self_consumption_mode_or_the_region() -> None:
    con = builtin_grid_code("es-en50549-1")
    sin = builtin_grid_code("es-en50549-1-sin-excedentes")
    assert rollout_refusal(con, sin) is not None
    assert rollout_refusal(sin, con) is not None
    assert rollout_refusal(None, sin) is not None
    assert rollout_refusal(sin, sin) is None
    assert rollout_refusal(builtin_grid_code("au-a-2020"), builtin_grid_code("au-b-2020")) is None
    refusal = rollout_refusal(builtin_grid_code("au-a-2020"), builtin_grid_code("heco-a"))
    assert refusal is not None
    assert "region" in refusal


# ----- the CLI ------------------------------------------------------------------------------
def _cli() -> typer.Typer:
    app = typer.Typer()
    cli_profiles.register(app)

    @app.callback()
    def _root() -> None: ...

    return app


def test_cli_lists_shows_diffs_and_maps_grid_codes() -> None:
    runner = CliRunner(env={"COLUMNS": "250"})
    listed = runner.invoke(_cli(), ["profiles", "list"])
    assert listed.exit_code == 0, listed.output
    assert "au-c-2024" in listed.output
    assert "UNVERIFIED (13 of 18)" in listed.output
    shown = runner.invoke(_cli(), ["profiles", "show", "au-b-2020"])
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if "volt_watt.curve " in x)
    assert "UNVERIFIED" in line
    diff = runner.invoke(_cli(), ["profiles", "diff", "au-a-2020", "au-b-2020"])
    assert diff.exit_code == 0, diff.output
    assert "Western Power" in diff.output
    mapped = runner.invoke(_cli(), ["profiles", "settings", "au-b-2020", "sim-der-inverter"])
    assert mapped.exit_code == 0, mapped.output
    assert yaml.safe_load(mapped.output)["settings"]["volt_var_q_pct"] == [30, 0, 0, -40]


def test_cli_validate_names_the_file_and_key_of_a_bad_grid_code(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "au-a-2020.yaml", _set("sustained_ov.v", value=260))
    result = CliRunner(env={"COLUMNS": "250"}).invoke(_cli(), ["profiles", "validate", str(folder)])
    assert result.exit_code == 1
    assert "au-a-2020.yaml" in result.output
    assert "settings.sustained_ov.v.value" in result.output
    assert "244-258 V" in result.output


# ----- how the agent addresses set values (edge_agent.setpoint_codec) ----------------------
@pytest.mark.parametrize(
    ("ref", "kind", "staging"),
    [
        ("705.Crv.Pt.V", "curve", "Crv[2].Pt[1].V"),
        ("707.Crv.MustTrip.Pt.Tms", "curve", "Crv[2].MustTrip[0].Pt[1].Tms"),
        ("711.Ctl.DbOf", "set_scalar", "Ctl[2].DbOf"),
        ("705.Crv.DeptRef", "set_scalar", "Crv[2].DeptRef"),
        ("704.WMaxLimPct", "scalar", None),
        ("704.PFWInj.PF", "scalar", None),  # a group that does not repeat
    ],
)
def test_set_values_are_classified_and_located(ref: str, kind: str, staging: str | None) -> None:
    assert set_kind(ref) == kind
    if staging is not None:
        key = ref.split(".", 1)[1]
        assert set_path(key, 2, 1 if kind == "curve" else None) == staging


def test_an_inherited_value_outside_the_childs_standard_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    child = {
        "id": "rule21-as-1547",
        "title": "Rule 21 values under IEEE 1547-2018",
        "extends": "rule21-sa-legacy",
        "standard": "ieee-1547-2018",
        "normal_category": "B",
        "abnormal_category": "III",
    }
    path = folder / "rule21-as-1547.yaml"
    path.write_text(yaml.safe_dump(child))
    err = _refused(folder)
    assert err.file == str(path)
    # Rule 21's OF1 60.5 Hz lies outside IEEE 1547's 61.0-66 Hz
    assert err.key == "settings.trip.hf.value[0][0] (inherited from rule21-sa-legacy)"
    assert "61-66 Hz" in err.reason
