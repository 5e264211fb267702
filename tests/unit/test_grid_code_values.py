"""Every value of every shipped grid-code profile, stated here (copied from
shared/design/grid-codes.md with its source and clause beside it), not read from the
profiles; and each profile's "unverified" mark follows from those confidences.

Row: key -> (value, unit, confidence, a fragment of the source the profile must name).
Curves are ((x, y), ...). A child's table is its parent's table with the rows it changes:
the inheritance is restated here, not taken from the YAML.
"""

from __future__ import annotations

from typing import Any

import pytest

from device_profiles.grid_code import builtin_grid_code, builtin_grid_codes

V, D, U = "verified", "draft", "unverified"
VQ, VP, VS, HS = ("V", "%VA"), ("V", "%P"), ("V", "s"), ("Hz", "s")
PQ, PP, PS = ("pu", "%VA"), ("pu", "%P"), ("pu", "s")
Row = tuple[Any, Any, str, str]

# ----- AS/NZS 4777.2:2020, grid-codes.md §1 ------------------------------------------------
AU_A: dict[str, Row] = {
    # volt-var and volt-watt enabled by default in the 2020 edition [V CSI Solar note]
    "volt_var.enabled": (1, "", V, "CSI Solar"),
    "volt_watt.enabled": (1, "", V, "CSI Solar"),
    # Volt-var table, region A [V secondary: CICCADA "AS/NZS 4777.2:2020 Australia A"]
    "volt_var.curve": (((207, 44), (220, 0), (240, 0), (258, -60)), VQ, V, "CICCADA"),
    # Volt-watt generating, A 253 V→100 %, 260 V→20 % [V secondary: same CICCADA constants]
    "volt_watt.curve": (((253, 100), (260, 20)), VP, V, "CICCADA"),
    # Volt-watt storage charging, A 207 V/20 % → 215 V/100 % [V Tesla PW3 App. H]
    "volt_watt.storage_charge_curve": (((207, 20), (215, 100)), VP, V, "Tesla"),
    # Sustained over-voltage 258 V (adjustable 244-258 V) [V Tesla App. H; Q CELLS]
    "sustained_ov.v": (258, "V", V, "Tesla"),
    # Passive anti-islanding [V Tesla App. H]: V< 180 V max disconnect 11 s, V<< 70 V 2 s
    "trip.lv": (((180, 11), (70, 2)), VS, V, "Tesla"),
    # V> 265 V max disconnect 2 s, V>> 275 V 0.2 s
    "trip.hv": (((265, 2), (275, 0.2)), VS, V, "Tesla"),
    # F< A/B 47 Hz max disconnect 2 s; F> A/B 52 Hz 0.2 s
    "trip.lf": (((47, 2),), HS, V, "Tesla"),
    "trip.hf": (((52, 0.2),), HS, V, "Tesla"),
    # Reconnect upper frequency fURF A/B 50.15 Hz [V Tesla App. H]
    "enter_service.hz_hi": (50.15, "Hz", V, "Tesla"),
    # Ramp ≤ 16.67 %/min (6 min) [V 2015 edition SEANZ note; 2020 unchanged U]
    "enter_service.ramp_s": (360, "s", U, "SEANZ"),
    # Frequency response A [V Q CELLS Q.VOLT G2 HYB manual §7.3.6.5]
    "freq_response.f_pmax_hz": (48, "Hz", V, "Q CELLS"),
    "freq_response.f_stop_ch_hz": (49, "Hz", V, "Q CELLS"),
    "freq_response.f_llco_hz": (49.75, "Hz", V, "Q CELLS"),
    "freq_response.f_ulco_hz": (50.25, "Hz", V, "Q CELLS"),
    "freq_response.f_transition_hz": (50.75, "Hz", V, "Q CELLS"),
    "freq_response.f_pmin_hz": (52, "Hz", V, "Q CELLS"),
}
AU_B = AU_A | {
    # Volt-var B [V Western Power]
    "volt_var.curve": (((205, 30), (220, 0), (235, 0), (255, -40)), VQ, V, "Western Power"),
    # Volt-watt B: draft library's 250 V not seeded; 253 V likely but unverified [U]
    "volt_watt.curve": (((253, 100), (260, 20)), VP, U, "draft-era library"),
    # Storage charging B 195 V/0 % → 215 V/100 % [V Tesla App. H]
    "volt_watt.storage_charge_curve": (((195, 0), (215, 100)), VP, V, "Tesla"),
    # Frequency response B: fLLCO 49.85, fULCO 50.15 [V Q CELLS §7.3.6.5]
    "freq_response.f_llco_hz": (49.85, "Hz", V, "Q CELLS"),
    "freq_response.f_ulco_hz": (50.15, "Hz", V, "Q CELLS"),
}
AU_C_2020 = AU_A | {
    # Volt-var C [D CSIRO/CanmetENERGY pAus4777.py, pre-Amd-2]
    "volt_var.curve": (((215, 44), (230, 0), (240, 0), (255, -60)), VQ, D, "pAus4777"),
    # Volt-watt C 253→260 V [D, pre-Amd-2]
    "volt_watt.curve": (((253, 100), (260, 20)), VP, D, "pAus4777"),
    # F< C 45 Hz max disconnect 6 s; F> C 55 Hz 0.2 s; fURF C 50.50 Hz [V Tesla App. H]
    "trip.lf": (((45, 6),), HS, V, "Tesla"),
    "trip.hf": (((55, 0.2),), HS, V, "Tesla"),
    "enter_service.hz_hi": (50.5, "Hz", V, "Tesla"),
    # Frequency response C [V Q CELLS §7.3.6.5]
    "freq_response.f_pmax_hz": (47, "Hz", V, "Q CELLS"),
    "freq_response.f_stop_ch_hz": (48.25, "Hz", V, "Q CELLS"),
    "freq_response.f_llco_hz": (49.5, "Hz", V, "Q CELLS"),
    "freq_response.f_ulco_hz": (50.5, "Hz", V, "Q CELLS"),
    "freq_response.f_transition_hz": (51.75, "Hz", V, "Q CELLS"),
    "freq_response.f_pmin_hz": (53, "Hz", V, "Q CELLS"),
}
# Amd 2:2024 changed region C set points; Amd-2 C values not found: pre-Amd-2 kept, [U]
_AMD2_CHANGED = [
    "volt_var.curve",
    "volt_watt.curve",
    "volt_watt.storage_charge_curve",
    "trip.lf",
    "trip.hf",
    "enter_service.hz_hi",
    *(k for k in AU_A if k.startswith("freq_response.")),
]
AU_C_2024 = AU_C_2020 | {
    k: (AU_C_2020[k][0], AU_C_2020[k][1], U, "Amd 2:2024") for k in _AMD2_CHANGED
}
# SAPN fixed export 0-1.5 kW/phase [V SAPN installer info]
AU_A_SAPN = AU_A | {"export.limit_w": (1500, "W/phase", V, "SA Power Networks")}

# ----- IEEE 1547-2018, grid-codes.md §2 [V ua-kxie eut.py, Sandia p1547.py] ------------------
US_B_II: dict[str, Row] = {
    "volt_var.enabled": (1, "", V, "ua-kxie"),
    # Volt-var Cat B 0.92/+44, 0.98/0, 1.02/0, 1.08/-44; Tr 5 s; VRef 1.0 pu [U]
    "volt_var.curve": (((0.92, 44), (0.98, 0), (1.02, 0), (1.08, -44)), PQ, V, "ua-kxie"),
    "volt_var.response_time_s": (5, "s", V, "ua-kxie"),
    "volt_var.v_ref": (1.0, "pu", U, "ua-kxie"),
    # Volt-watt 1.06 pu → 100 %, 1.10 pu → 20 % (lesser of 20 % and Pmin); Tr 10 s
    "volt_watt.curve": (((1.06, 100), (1.10, 20)), PP, V, "ua-kxie"),
    "volt_watt.response_time_s": (10, "s", V, "ua-kxie"),
    # Freq-droop dbOF = dbUF = 0.036 Hz, kOF = kUF = 5 %, Tr 5 s
    "freq_droop.enabled": (1, "", V, "ua-kxie"),
    "freq_droop.db_of_hz": (0.036, "Hz", V, "ua-kxie"),
    "freq_droop.db_uf_hz": (0.036, "Hz", V, "ua-kxie"),
    "freq_droop.k_of_pct": (5, "%", V, "ua-kxie"),
    "freq_droop.k_uf_pct": (5, "%", V, "ua-kxie"),
    "freq_droop.response_time_s": (5, "s", V, "ua-kxie"),
    # Enter service 0.917-1.05 pu, 59.5-60.1 Hz, delay 300 s, ES period 300 s
    "enter_service.v_lo": (0.917, "pu", V, "ua-kxie"),
    "enter_service.v_hi": (1.05, "pu", V, "ua-kxie"),
    "enter_service.hz_lo": (59.5, "Hz", V, "ua-kxie"),
    "enter_service.hz_hi": (60.1, "Hz", V, "ua-kxie"),
    "enter_service.delay_s": (300, "s", V, "ua-kxie"),
    "enter_service.ramp_s": (300, "s", V, "ua-kxie"),
    # Voltage trip Cat II: UV1 0.70/10 s, UV2 0.45/0.16 s, OV1 1.10/2 s, OV2 1.20/0.16 s
    "trip.lv": (((0.70, 10), (0.45, 0.16)), PS, V, "ua-kxie"),
    "trip.hv": (((1.10, 2), (1.20, 0.16)), PS, V, "ua-kxie"),
    # Frequency trip (all categories): UF1 58.5/300, UF2 56.5/0.16, OF1 61.2/300, OF2 62/0.16
    "trip.lf": (((58.5, 300), (56.5, 0.16)), HS, V, "ua-kxie"),
    "trip.hf": (((61.2, 300), (62.0, 0.16)), HS, V, "ua-kxie"),
    # Cat II ride-through [V NREL PyDSS PvVoltageRideThru.py geometry]
    "ride_through.lv": (((0.88, 5), (0.65, 3), (0.45, 0.32), (0.30, 0.16)), PS, V, "PyDSS"),
    "ride_through.hv": (((1.10, 1), (1.15, 0.5), (1.175, 0.2)), PS, V, "PyDSS"),
}
# Cat I: UV1 0.70/2.0 s; no Cat I ride-through geometry in grid-codes.md
US_B_I = {k: v for k, v in US_B_II.items() if not k.startswith("ride_through.")} | {
    "trip.lv": (((0.70, 2), (0.45, 0.16)), PS, V, "ua-kxie"),
}
# Cat III: UV1 0.88/21, UV2 0.50/2, OV1 1.10/13; ride-through [V PyDSS; III partly U]
US_B_III = {k: v for k, v in US_B_II.items() if k != "ride_through.hv"} | {
    "trip.lv": (((0.88, 21), (0.50, 2)), PS, V, "ua-kxie"),
    "trip.hv": (((1.10, 13), (1.20, 0.16)), PS, V, "ua-kxie"),
    "ride_through.lv": (((0.88, 20), (0.70, 10)), PS, U, "PyDSS"),
    "momentary_cessation.lv": (((0.50, 1),), PS, U, "PyDSS"),
    "momentary_cessation.hv": (((1.10, 12),), PS, U, "PyDSS"),
}
# HECO 14H [V OutBack Mojave Table 16 "HECO 14H-2018"; islands V Sinexcel, Delta M42U]
HECO_A = US_B_III | {
    "trip.lf": (((57, 21), (56, 0.16)), HS, V, "OutBack"),  # UF1 57 Hz 21 s; UF2 56 Hz
    "trip.hf": (((63, 21), (64, 0.16)), HS, V, "OutBack"),  # OF1 63 Hz 21 s; OF2 64 Hz
    "freq_droop.db_of_hz": (0.036, "Hz", V, "OutBack"),
    "freq_droop.db_uf_hz": (0.036, "Hz", V, "OutBack"),
    "freq_droop.k_of_pct": (4, "%", V, "OutBack"),
    "freq_droop.k_uf_pct": (4, "%", V, "OutBack"),
    "freq_droop.response_time_s": (0.5, "s", V, "OutBack"),
    "freq_droop.p_min_pct": (0, "%P", V, "OutBack"),
    "enter_service.v_lo": (0.88, "pu", V, "OutBack"),  # enter service 0.88-1.10 pu
    "enter_service.v_hi": (1.10, "pu", V, "OutBack"),
    "enter_service.hz_hi": (60.1, "Hz", V, "OutBack"),
    # SRD v2.0 volt-var curve and VW end point [U]; VW start 1.06 pu [secondary NREL DISCO]
    "volt_var.curve": (((0.92, 44), (0.98, 0), (1.02, 0), (1.08, -44)), PQ, U, "SRD v2.0"),
    "volt_watt.curve": (((1.06, 100), (1.10, 20)), PP, U, "DISCO"),
}
HECO_B = HECO_A | {  # Moloka'i, Lāna'i: OF2/UF2 65/50 Hz
    "trip.lf": (((57, 21), (50, 0.16)), HS, V, "OutBack"),
    "trip.hf": (((63, 21), (65, 0.16)), HS, V, "OutBack"),
}
# Rule 21, UL 1741 SA era [V Delta M42U App. A-1 Table SA9.1; Hoymiles via OpenDTU PR 1590]
RULE21: dict[str, Row] = {
    "volt_var.enabled": (1, "", V, "SCE Advice 3810-E"),  # Res. E-4920
    "volt_watt.enabled": (1, "", V, "SCE Advice 3810-E"),  # Res. E-4898
    "freq_droop.enabled": (1, "", V, "SCE Advice 3810-E"),
    # 92 %/+30 %, 96.7 %/0, 103.3 %/0, 107 %/-30 % [V Canadian Solar CSI-185K/255K manual]
    "volt_var.curve": (
        ((92, 30), (96.7, 0), (103.3, 0), (107, -30)),
        ("%Vnom", "%VA"),
        V,
        "Canadian Solar",
    ),
    "freq_droop.db_of_hz": (0.036, "Hz", U, "Rule 21"),  # FW 36 mHz/5 % [U]
    "freq_droop.db_uf_hz": (0.036, "Hz", U, "Rule 21"),
    "freq_droop.k_of_pct": (5, "%", U, "Rule 21"),
    "freq_droop.k_uf_pct": (5, "%", U, "Rule 21"),
    # SA9.1: max trip 21 s (70-88 %), 11 s (50-70 %), 1.5 s (<50 %), 13 s, 0.16 s
    "trip.lv": (((0.88, 21), (0.70, 11), (0.50, 1.5)), PS, V, "Delta"),
    "trip.hv": (((1.10, 13), (1.20, 0.16)), PS, V, "Delta"),
    "ride_through.lv": (((0.88, 20), (0.70, 10)), PS, V, "Delta"),
    "momentary_cessation.lv": (((0.50, 1),), PS, V, "Delta"),
    "momentary_cessation.hv": (((1.10, 12),), PS, V, "Delta"),
    # SA10.1: 57-58.5 and 60.5-62 Hz trip 300 s; <57 and >62 Hz 0.16 s; 300 s reconnect
    "trip.lf": (((58.5, 300), (57, 0.16)), HS, V, "Hoymiles"),
    "trip.hf": (((60.5, 300), (62, 0.16)), HS, V, "Hoymiles"),
    "enter_service.delay_s": (300, "s", V, "Hoymiles"),
}

# ----- Spain, grid-codes.md §3 --------------------------------------------------------------
ES: dict[str, Row] = {
    # LFSM-O 50.2 Hz, 5 % (2-12 %); LFSM-U 49.8 Hz, 5 % [V Beckhoff TF8360 EN/VDE defaults]
    "freq_droop.enabled": (1, "", V, "Beckhoff"),
    "freq_droop.db_of_hz": (0.2, "Hz", V, "Beckhoff"),
    "freq_droop.k_of_pct": (5, "%", V, "Beckhoff"),
    "freq_droop.db_uf_hz": (0.2, "Hz", V, "Beckhoff"),
    "freq_droop.k_uf_pct": (5, "%", V, "Beckhoff"),
    # EN 50549-1-style generic values [U]
    "sustained_ov.v": (1.10, "pu", U, "EN 50549-1"),  # OV 10-min mean 1.10 Un
    "trip.hv": (((1.15, 0.2),), PS, U, "EN 50549-1"),  # OV2 1.15 Un 0.2 s
    "trip.lv": (((0.85, 1.5),), PS, U, "EN 50549-1"),  # UV 0.85 Un 1.5 s
    "trip.hf": (((51.5, 0.5),), HS, U, "EN 50549-1"),  # OF 51.5 Hz ~0.5 s
    "trip.lf": (((47.5, 0.5),), HS, U, "EN 50549-1"),  # UF 47.5 Hz ~0.5 s
    # reconnect 0.85-1.10 Un, 49.9-50.1 Hz, ≥ 60 s, ramp ≤ 10 % Pn/min
    "enter_service.v_lo": (0.85, "pu", U, "EN 50549-1"),
    "enter_service.v_hi": (1.10, "pu", U, "EN 50549-1"),
    "enter_service.hz_lo": (49.9, "Hz", U, "EN 50549-1"),
    "enter_service.hz_hi": (50.1, "Hz", U, "EN 50549-1"),
    "enter_service.delay_s": (60, "s", U, "EN 50549-1"),
    "enter_service.ramp_s": (600, "s", U, "EN 50549-1"),
}
# sin excedentes: export limit 0 [V RD 244/2019 summaries] (+ anti-export device)
ES_SIN = ES | {"export.limit_w": (0, "W", V, "RD 244/2019")}

EXPECTED: dict[str, dict[str, Row]] = {
    "au-a-2020": AU_A,
    "au-b-2020": AU_B,
    "au-c-2020": AU_C_2020,
    "au-c-2024": AU_C_2024,
    "au-a-2020-sapn-fixed": AU_A_SAPN,
    "ieee1547-2018-b-i": US_B_I,
    "ieee1547-2018-b-ii": US_B_II,
    "ieee1547-2018-b-iii": US_B_III,
    "heco-a": HECO_A,
    "heco-b": HECO_B,
    "rule21-sa-legacy": RULE21,
    "es-en50549-1": ES,
    "es-en50549-1-sin-excedentes": ES_SIN,
}
ROWS = [(pid, key) for pid, table in EXPECTED.items() for key in table]


def test_the_shipped_profiles_are_exactly_those_tabled() -> None:
    assert set(builtin_grid_codes()) == set(EXPECTED)


@pytest.mark.parametrize("profile_id", EXPECTED)
def test_a_profile_holds_exactly_the_tabled_keys(profile_id: str) -> None:
    assert set(builtin_grid_code(profile_id).values) == set(EXPECTED[profile_id])


@pytest.mark.parametrize(("profile_id", "key"), ROWS)
def test_value_unit_confidence_and_source(profile_id: str, key: str) -> None:
    value, unit, confidence, source = EXPECTED[profile_id][key]
    got = builtin_grid_code(profile_id).values[key]
    if isinstance(value, tuple):
        assert isinstance(got.value, tuple)
        assert [list(p) for p in got.value] == [pytest.approx(list(p)) for p in value]
    else:
        assert got.value == pytest.approx(value)
    assert got.unit == unit
    assert got.provenance.confidence == confidence
    assert source.lower() in (got.provenance.source + " " + got.provenance.clause).lower()
    assert got.provenance.clause


@pytest.mark.parametrize("profile_id", EXPECTED)
def test_a_profile_is_marked_unverified_exactly_when_a_value_is_not_verified(
    profile_id: str,
) -> None:
    not_verified = sorted(k for k, row in EXPECTED[profile_id].items() if row[2] != V)
    profile = builtin_grid_code(profile_id)
    assert profile.unverified_keys == not_verified
    assert profile.unverified is bool(not_verified)


def test_profiles_name_their_region_standard_and_1547_categories() -> None:
    expected = {  # id: (region, standard, normal category, abnormal category)
        "au-a-2020": ("au", "as-nzs-4777.2-2020", None, None),
        "au-c-2024": ("au", "as-nzs-4777.2-2020-amd2-2024", None, None),
        "ieee1547-2018-b-i": ("us", "ieee-1547-2018", "B", "I"),
        "ieee1547-2018-b-ii": ("us", "ieee-1547-2018", "B", "II"),
        "ieee1547-2018-b-iii": ("us", "ieee-1547-2018", "B", "III"),
        "heco-a": ("us", "heco-rule-14h", "B", "III"),  # HECO uses Cat III ride-through
        "heco-b": ("us", "heco-rule-14h", "B", "III"),
        "rule21-sa-legacy": ("us", "ul-1741-sa-rule21", None, None),
        "es-en50549-1": ("es", "en-50549-1-2019", None, None),
    }
    for pid, (region, standard, normal, abnormal) in expected.items():
        p = builtin_grid_code(pid)
        assert (p.region, p.standard, p.normal_category, p.abnormal_category) == (
            region,
            standard,
            normal,
            abnormal,
        ), pid


def test_no_nz_profile_is_invented() -> None:
    # grid-codes.md names NZ as an AS/NZS 4777.2 region but gives no NZ value.
    assert not [p for p in builtin_grid_codes() if p.startswith("nz")]


def test_a_profile_labels_a_config_document() -> None:
    ref = builtin_grid_code("heco-b").profile_ref()
    assert (ref.id, ref.region, ref.version) == ("heco-b", "us", 1)


def test_sin_excedentes_is_registration_data_with_a_certified_device() -> None:
    sin = builtin_grid_code("es-en50549-1-sin-excedentes")
    assert sin.registration is not None
    assert sin.registration.self_consumption_mode == "sin_excedentes"
    assert sin.registration.anti_export_device_required
    assert sin.registration.anti_export_certification == "UNE 217001-IN"
    assert sin.registration_only
    assert not builtin_grid_code("es-en50549-1").registration_only
