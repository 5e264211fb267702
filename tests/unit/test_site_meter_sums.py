"""Which devices a site-level figure adds up once a site has PoTR's system meter beside
its grid meter (``cloud.telemetry.site_meters.summed_devices``): never the system
meter; a grid metric from the grid meter the installation record names; nobody left
out on a guess."""

from __future__ import annotations

from cloud.telemetry.site_meters import MeterRole, SiteDevice, is_grid_metric, summed_devices

SYSTEM, GRID = MeterRole.SYSTEM, MeterRole.GRID
INVERTER = SiteDevice("INV-1", 1, True)
GRID_METER = SiteDevice("MTR-9", 2, True)
SYSTEM_METER = SiteDevice("ACME-77", 4, True)  # no prefix tells it: only the record does
RECORD = {"ACME-77": SYSTEM, "MTR-9": GRID}


def test_grid_figures_are_the_grid_meters_and_the_system_meter_never_counts() -> None:
    meters = [GRID_METER, SYSTEM_METER]
    assert summed_devices(meters, RECORD, grid_metric=True) == [2]
    assert summed_devices([INVERTER, *meters], RECORD, grid_metric=False) == [1, 2]


def test_without_a_record_every_device_with_the_register_counts_as_before() -> None:
    meters = [GRID_METER, SYSTEM_METER, SiteDevice("X", 5, False)]
    assert summed_devices(meters, {}, grid_metric=True) == [2, 4]


def test_a_site_without_a_grid_meter_on_record_leaves_the_system_meter_out() -> None:
    # us sites bill production and need no grid meter on their record
    assert summed_devices([GRID_METER, SYSTEM_METER], {"ACME-77": SYSTEM}, grid_metric=True) == [2]


def test_a_grid_meter_whose_serial_was_not_read_is_the_one_position_keyed_device() -> None:
    unread = SiteDevice("site-u2", 8, True)
    assert summed_devices([unread, SYSTEM_METER], RECORD, grid_metric=True) == [8]


def test_a_system_meter_whose_serial_was_not_read_is_never_left_out_on_a_guess() -> None:
    unread = SiteDevice("site-u4", 9, True)
    assert summed_devices([unread, SiteDevice("other-u2", 8, True)], RECORD, grid_metric=True) == [
        8,
        9,
    ]


def test_replaced_meters_keep_their_roles() -> None:
    old, new = SiteDevice("ACME-70", 3, True), SYSTEM_METER
    roles = {**RECORD, "ACME-70": SYSTEM, "MTR-1": GRID}
    old_grid = SiteDevice("MTR-1", 6, True)
    assert summed_devices([old, new, old_grid, GRID_METER], roles, grid_metric=True) == [2, 6]


def test_grid_metrics_are_the_connections() -> None:
    assert all(is_grid_metric(m) for m in ("grid_w", "grid_l1_v", "import_wh", "export_wh"))
    assert not any(is_grid_metric(m) for m in ("pv_w", "pv_wh", "battery_w"))
