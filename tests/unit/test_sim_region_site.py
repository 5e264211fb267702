"""Images from the SunSpec codec, the region preset of the device site, and the fleet's
light site model (pure parts, no network)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from contracts.topics import Region
from device_profiles.sunspec_codec import SUNS_BASE, decode_model, device_image, model_registers
from simulators.device_site import DeviceSite, region_site
from simulators.fleet.telemetry import SitePhysics, pv_available_w
from simulators.plant import InverterControls, PlantConfig, initial_state, step
from simulators.solar import ClearSky

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)  # 13:00 AEDT
MIDNIGHT_SYDNEY = datetime(2024, 1, 10, 13, 0, tzinfo=UTC)  # 00:00 AEDT


def _sample(ts: datetime = NOON_SYDNEY, region: Region = Region.AU, seed: int = 7):
    return SitePhysics(region, 5000, seed, ts).sample(ts)


def test_image_starts_with_suns_and_ends_with_end_model() -> None:
    regs, blocks = device_image([(1, {"SN": "X"}), (103, {"W": 1})])
    assert regs[:2] == [0x5375, 0x6E53]
    assert regs[-2:] == [0xFFFF, 0]
    assert [b.model_id for b in blocks] == [1, 103]
    assert blocks[0].addr == SUNS_BASE + 2


def test_model_lengths_come_from_pysunspec2_definitions() -> None:
    for model_id, length in {1: 66, 103: 50, 120: 26, 123: 24, 203: 105}.items():
        regs = model_registers(model_id, {})
        assert regs[0] == model_id
        assert regs[1] == length
        assert len(regs) == length + 2


def test_chain_links_by_length() -> None:
    regs, blocks = device_image([(1, {}), (103, {}), (120, {}), (123, {})])
    for block, following in itertools.pairwise(blocks):
        assert following.addr == block.addr + 2 + block.length
        assert regs[following.addr - SUNS_BASE] == following.model_id


def test_unknown_point_is_refused() -> None:
    with pytest.raises(KeyError, match="NoSuchPoint"):
        model_registers(103, {"NoSuchPoint": 1})


def test_controls_survive_a_register_round_trip() -> None:
    raw = {"Conn": 1, "WMaxLimPct": 40, "WMaxLim_Ena": 1, "WMaxLimPct_SF": 0}
    decoded = decode_model(123, model_registers(123, raw))
    assert {k: decoded.raw[k] for k in raw} == raw
    assert decoded.scaled["WMaxLimPct"] == 40


def test_pv_is_zero_at_night_and_positive_at_noon() -> None:
    assert pv_available_w(0.5, 5000) == 0.0
    assert pv_available_w(12.25, 5000) > 4000
    assert _sample(MIDNIGHT_SYDNEY).pv_w == 0
    assert _sample(MIDNIGHT_SYDNEY).pv_state == 2  # SLEEPING
    assert _sample().pv_w > 3000


def test_grid_closes_the_balance_positive_import() -> None:
    sample = _sample()
    assert sample.grid_w == sample.load_w - sample.pv_w
    night = _sample(MIDNIGHT_SYDNEY)
    assert night.grid_w > 0  # importing at night


def test_energy_counters_only_grow() -> None:
    physics = SitePhysics(Region.AU, 5000, 7, NOON_SYDNEY)
    sample = physics.sample(NOON_SYDNEY)
    for i in range(1, 50):
        nxt = physics.sample(NOON_SYDNEY + timedelta(minutes=10 * i))
        assert nxt.totals.pv_wh >= sample.totals.pv_wh
        assert nxt.totals.import_wh >= sample.totals.import_wh
        assert nxt.totals.export_wh >= sample.totals.export_wh
        sample = nxt


def test_noise_is_deterministic_by_seed() -> None:
    assert _sample() == _sample()


def test_region_sets_voltage_and_frequency() -> None:
    us = _sample(region=Region.US, seed=1)
    es = _sample(region=Region.ES, seed=1)
    assert abs(us.hz - 60) < 0.1
    assert abs(es.hz - 50) < 0.1
    assert all(abs(v - 120) < 3 for v in us.phase_v)
    assert all(abs(v - 230) < 5 for v in es.phase_v)


def test_region_preset_puts_the_site_on_its_grid() -> None:
    us = DeviceSite(region_site("us-site", "us", start_time=NOON_SYDNEY))
    assert abs(us.state.hz - 60) < 0.1
    assert all(100 < v < 140 for v in us.state.phase_v)  # 120 V nominal (+ midday rise)
    assert [(d.unit_id, d.profile.kind) for d in us.devices] == [(1, "inverter"), (2, "meter")]


def test_power_limit_throttles_pv() -> None:
    cfg = PlantConfig(seed=7)
    sky = ClearSky(cfg.latitude, cfg.longitude, cfg.tz)
    prev = initial_state(cfg, sky, NOON_SYDNEY)
    limited = step(cfg, sky, prev, NOON_SYDNEY, InverterControls(limit_pct=20, limit_enabled=True))
    assert limited.pv_w == 1000
    assert limited.pv_state == 5  # THROTTLED
    assert step(cfg, sky, prev, NOON_SYDNEY, InverterControls(connected=False)).pv_w == 0


def test_serials_are_unique_per_site_and_unit() -> None:
    serials = {d.serial for s in ("a1", "a2") for d in DeviceSite(region_site(s, "au")).devices}
    assert len(serials) == 4
    assert all(len(d.serial) <= 32 for d in DeviceSite(region_site("x" * 200, "au")).devices)


def test_device_models_encode_without_overflow_for_big_sites() -> None:
    site = DeviceSite(region_site("big", "au", start_time=NOON_SYDNEY, pv_capacity_w=100_000))
    assert site.point(1, "103.W") == pytest.approx(site.state.pv_w, rel=0.01)
    assert site.state.pv_w > 30_000  # beyond int16 at SF 0
