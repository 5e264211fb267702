"""Which device a meter swap is recorded for, and its registers in exact Wh."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cloud.telemetry.meter_swaps import (
    RegisterError,
    SiteDevice,
    SwapOutcome,
    continuing_device,
    register_wh,
)

OLD, NEW = "MTR-0001", "MTR-0002"
INVERTER = SiteDevice("INV-0001", 11, has_register=False)


def test_the_device_keyed_by_the_old_serial_carries_the_register_on() -> None:
    assert continuing_device([INVERTER, SiteDevice(OLD, 7, has_register=True)], OLD, NEW) == 7


def test_a_new_meter_keyed_by_its_serial_is_a_device_of_its_own() -> None:
    devices = [SiteDevice(OLD, 7, has_register=True), SiteDevice(NEW, 9, has_register=True)]
    assert continuing_device(devices, OLD, NEW) is SwapOutcome.SEPARATE_DEVICES
    assert continuing_device(devices[1:], OLD, NEW) is SwapOutcome.SEPARATE_DEVICES


def test_a_meter_kept_by_position_is_the_sites_one_device_with_the_billing_register() -> None:
    by_position = SiteDevice("rs485-u2", 7, has_register=True)
    assert continuing_device([INVERTER, by_position], OLD, NEW) == 7
    assert continuing_device([INVERTER], OLD, NEW) is SwapOutcome.NO_METER
    two = [by_position, SiteDevice("rs485-u3", 8, has_register=True)]
    assert continuing_device(two, OLD, NEW) is SwapOutcome.AMBIGUOUS


def test_a_device_keyed_by_another_serial_never_carries_the_swap() -> None:
    # PoTR's system meter, keyed by its serial, is another meter than the one swapped.
    system = SiteDevice("SYS-s1", 5, has_register=True)
    assert continuing_device([INVERTER, system], OLD, NEW) is SwapOutcome.NO_METER
    by_position = SiteDevice("rs485-u2", 7, has_register=True)
    assert continuing_device([system, by_position], OLD, NEW) == 7


def test_registers_become_exact_watt_hours_or_are_refused() -> None:
    assert register_wh(Decimal("123456789.123")) == Decimal("123456789123")
    assert register_wh(Decimal("0.0005")) == Decimal("0.5")
    for bad in ("-0.001", "0.0000001", "1000000000", "NaN"):
        with pytest.raises(RegisterError):
            register_wh(Decimal(bad))
