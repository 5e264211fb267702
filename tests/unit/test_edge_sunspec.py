"""Raw registers in, normalised values out: discovery, decoding, scaling, sentinels."""

from __future__ import annotations

import pytest

from contracts.messages import Quality
from device_profiles.sunspec_codec import (
    ModelBlock,
    SunSpecError,
    decode_model,
    device_image,
    model_registers,
    read_plan,
)
from edge_agent.discovery import discover, read_model
from edge_agent.normalise import POINT_MAP, nameplate, normalise


class ExceptionResponse(Exception):
    reason = "exception"


def reader_over(image: list[int], base: int = 40000):
    """An in-memory register reader: out-of-image addresses answer like Modbus exception 2."""

    async def read(address: int, count: int) -> list[int]:
        start = address - base
        if start < 0 or start + count > len(image):
            raise ExceptionResponse(f"illegal address {address}")
        return image[start : start + count]

    return read


INVERTER_103 = {
    "A": 2175,
    "AphA": 725,
    "AphB": 725,
    "AphC": 725,
    "A_SF": -2,
    "PhVphA": 2301,
    "PhVphB": 2299,
    "PhVphC": 2305,
    "V_SF": -1,
    "W": 500,
    "W_SF": 1,
    "Hz": 5001,
    "Hz_SF": -2,
    "VA": 5000,
    "VA_SF": 0,
    "VAr": -120,
    "VAr_SF": 0,
    "PF": 995,
    "PF_SF": -1,
    "WH": 123456,
    "WH_SF": 0,
    "DCW": 5150,
    "DCW_SF": 0,
    "TmpCab": 412,
    "Tmp_SF": -1,
    "St": 4,
}
METER_203 = {
    "A": 1234,
    "A_SF": -2,
    "PhVphA": 2290,
    "PhVphB": 2300,
    "PhVphC": 2310,
    "V_SF": -1,
    "Hz": 4998,
    "Hz_SF": -2,
    "W": -1500,
    "WphA": -500,
    "WphB": -500,
    "WphC": -500,
    "W_SF": 0,
    "VA": 1550,
    "VA_SF": 0,
    "VAR": 300,
    "VAR_SF": 0,
    "PF": -97,
    "PF_SF": 0,
    "TotWhExp": 2000,
    "TotWhImp": 3000,
    "TotWh_SF": 0,
}


async def test_discovery_walks_the_chain_and_reads_identity() -> None:
    image, blocks = device_image(
        [(1, {"Mn": "Acme", "Md": "X1", "SN": "SN-1", "Vr": "2.1"}), (103, INVERTER_103)]
    )
    device = await discover(reader_over(image))
    assert device.base == 40000
    assert device.model_ids == [1, 103]
    assert device.blocks[1] == ModelBlock(103, blocks[1].addr, 50)
    assert device.common is not None
    assert device.common.scaled["SN"] == "SN-1"
    assert device.common.scaled["Mn"] == "Acme"


async def test_discovery_falls_back_to_base_0_and_50000() -> None:
    for base in (0, 50000):
        image, _ = device_image([(1, {"SN": "S"})], base=base)
        assert (await discover(reader_over(image, base))).base == base


async def test_discovery_refuses_a_device_without_suns() -> None:
    with pytest.raises(SunSpecError):
        await discover(reader_over([0] * 200))


async def test_unknown_vendor_models_are_skipped_by_length() -> None:
    vendor = [64999, 3, 1, 2, 3]
    image, _ = device_image([(1, {"SN": "S"})])
    image = image[:-2] + vendor + model_registers(103, INVERTER_103) + [0xFFFF, 0]
    device = await discover(reader_over(image))
    assert device.model_ids == [1, 64999, 103]
    block = device.find(103)
    assert block is not None
    decoded = decode_model(103, await read_model(reader_over(image), block))
    assert decoded.scaled["W"] == 5000


def test_inverter_values_are_scaled_into_catalog_metrics() -> None:
    decoded = decode_model(103, model_registers(103, INVERTER_103))
    out = normalise({103: decoded})
    assert out.quality is Quality.GOOD
    assert out.values["pv_w"] == 5000.0
    assert out.values["pv_ac_a"] == pytest.approx(21.75)
    assert out.values["pv_l1_v"] == pytest.approx(230.1)
    assert out.values["pv_hz"] == pytest.approx(50.01)
    assert out.values["pv_var"] == -120.0
    assert out.values["pv_pf_pct"] == pytest.approx(99.5)
    assert out.values["pv_wh"] == 123456.0
    assert out.values["pv_cabinet_c"] == pytest.approx(41.2)
    assert out.values["pv_state_code"] == 4.0


def test_meter_sign_is_a_per_device_setting() -> None:
    decoded = decode_model(203, model_registers(203, METER_203))
    as_import = normalise({203: decoded})
    assert as_import.values["grid_w"] == -1500.0  # exporting
    assert as_import.values["grid_l1_w"] == -500.0
    assert as_import.values["import_wh"] == 3000.0
    assert as_import.values["export_wh"] == 2000.0
    flipped = normalise({203: decoded}, meter_import_sign=-1)
    assert flipped.values["grid_w"] == 1500.0
    assert flipped.values["grid_hz"] == pytest.approx(49.98)  # unsigned metrics untouched


def test_not_implemented_points_become_null() -> None:
    decoded = decode_model(103, model_registers(103, {"W": 100, "W_SF": 0}))
    out = normalise({103: decoded})
    assert out.values["pv_w"] == 100.0
    for metric in ("pv_ac_a", "pv_l1_v", "pv_wh", "pv_state_code", "pv_var"):
        assert out.values[metric] is None, metric


@pytest.mark.parametrize(
    ("point", "raw"),
    [("W", 0x8000), ("A", 0xFFFF), ("St", 0xFFFF)],
)
def test_sentinels_are_null_not_numbers(point: str, raw: int) -> None:
    regs = model_registers(103, INVERTER_103)
    offset = {"W": 14, "A": 2, "St": 38}[point]
    regs[offset] = raw
    value = decode_model(103, regs).raw[point]
    assert value is None


def test_a_value_whose_sf_is_not_implemented_is_null_and_suspect() -> None:
    points = dict(INVERTER_103)
    points["W_SF"] = None  # encoded as 0x8000
    out = normalise({103: decode_model(103, model_registers(103, points))})
    assert out.values["pv_w"] is None
    assert out.quality is Quality.SUSPECT
    assert "sf_missing:103.W" in out.flags


def test_nameplate_comes_from_model_120() -> None:
    decoded = decode_model(120, model_registers(120, {"WRtg": 500, "WRtg_SF": 1}))
    assert nameplate({120: decoded})["WRtg"] == 5000.0
    assert normalise({120: decoded}).values == {"pv_rating_w": 5000.0}


def test_point_map_names_only_catalog_metrics() -> None:
    assert POINT_MAP[103]["W"] == "pv_w"
    assert POINT_MAP[203]["TotWhImp"] == "import_wh"


def test_read_plan_keeps_a_model_in_one_request_when_it_fits() -> None:
    assert read_plan(ModelBlock(203, 40070, 105)) == [(40070, 107)]
    assert read_plan(ModelBlock(999, 0, 200)) == [(0, 125), (125, 77)]


async def test_garbage_model_headers_are_refused_not_followed() -> None:
    image, _ = device_image([(1, {"SN": "S"})])
    garbage = [*image[:-2], 0x1234, 0xFFF0]  # a length running past the address space
    with pytest.raises(SunSpecError, match="garbage model header"):
        await discover(reader_over(garbage + [0] * 8))


async def test_no_suns_says_what_each_base_answered() -> None:
    with pytest.raises(SunSpecError, match=r"40000: 0000 0000.*wrong unit id"):
        await discover(reader_over([0] * 200))
