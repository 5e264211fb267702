"""The simulator's pure parts: register images from pysunspec2 definitions and physics."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from simulators.devices import (
    controls_from_registers,
    controls_points,
    inverter_models,
    meter_models,
    serial_number,
)
from simulators.physics import Controls, initial_totals, pv_available_w, step
from simulators.sunspec_image import SUNS_BASE, device_image, model_registers

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)  # 13:00 AEDT
MIDNIGHT_SYDNEY = datetime(2024, 1, 10, 13, 0, tzinfo=UTC)  # 00:00 AEDT


def _sample(ts: datetime = NOON_SYDNEY, controls: Controls = Controls()):
    return step(
        initial_totals(7),
        ts,
        0.0,
        region="au",
        tz="Australia/Sydney",
        capacity_w=5000,
        seed=7,
        controls=controls,
    )


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
    sample = _sample()
    for i in range(1, 50):
        nxt = step(
            sample.totals,
            NOON_SYDNEY + timedelta(minutes=10 * i),
            600.0,
            region="au",
            tz="Australia/Sydney",
            capacity_w=5000,
            seed=7,
        )
        assert nxt.totals.pv_wh >= sample.totals.pv_wh
        assert nxt.totals.import_wh >= sample.totals.import_wh
        assert nxt.totals.export_wh >= sample.totals.export_wh
        sample = nxt


def test_noise_is_deterministic_by_seed() -> None:
    assert _sample() == _sample()


def test_region_sets_voltage_and_frequency() -> None:
    us = step(initial_totals(1), NOON_SYDNEY, 0, region="us", tz="UTC", capacity_w=5000, seed=1)
    es = step(initial_totals(1), NOON_SYDNEY, 0, region="es", tz="UTC", capacity_w=5000, seed=1)
    assert abs(us.hz - 60) < 0.1
    assert abs(es.hz - 50) < 0.1
    assert all(abs(v - 120) < 3 for v in us.phase_v)
    assert all(abs(v - 230) < 5 for v in es.phase_v)


def test_power_limit_throttles_pv() -> None:
    limited = _sample(controls=Controls(limit_pct=20, limit_enabled=True))
    assert limited.pv_w == 1000
    assert limited.pv_state == 5  # THROTTLED
    assert _sample(controls=Controls(connected=False)).pv_w == 0


def test_serials_are_unique_per_site_and_kind() -> None:
    serials = {serial_number(s, k) for s in ("a1", "a2") for k in ("inverter", "meter")}
    assert len(serials) == 4
    assert len(serial_number("x" * 200, "meter")) <= 32


def test_controls_survive_a_register_round_trip() -> None:
    controls = Controls(connected=True, limit_pct=40, limit_enabled=True)
    regs = model_registers(123, controls_points(controls))
    assert controls_from_registers(regs, Controls()) == controls


def test_device_models_encode_without_overflow_for_big_sites() -> None:
    sample = step(
        initial_totals(3),
        NOON_SYDNEY,
        0,
        region="au",
        tz="Australia/Sydney",
        capacity_w=100_000,
        seed=3,
    )
    device_image(inverter_models(sample, serial="S", capacity_w=100_000, controls=Controls()))
    device_image(meter_models(sample, serial="M", capacity_w=100_000))
