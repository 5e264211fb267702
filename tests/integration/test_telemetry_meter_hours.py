"""A meter's hourly register deltas, read by serial for billing, on both backends: the
readings go in through the store's write path, the maintenance job keeps the energy
buckets, and :class:`MeterHourReader` answers per hour. Expected figures are register
differences of the readings written here, worked out in the test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cloud.telemetry import (
    DeviceMatch,
    EnergyFlag,
    MeterHourReader,
    MeterHours,
    MeterNotFoundError,
)
from contracts.metrics import metric
from contracts.topics import Region
from tests.integration.telemetry_world import Row, Store, add_devices, add_gateway, backend_store

pytestmark = pytest.mark.integration

IMPORT_WH, EXPORT_WH, PV_WH = (metric(n).id for n in ("import_wh", "export_wh", "pv_wh"))
SITE, GATEWAY = 5, "gw-hours-1"
SYSTEM, GRID, INVERTER = 7, 8, 9
SYS_SN, GRID_SN = "SYS-0001", "GRID-0001"
SYDNEY = ZoneInfo("Australia/Sydney")
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.fixture(scope="module", params=["plain", "timescale"])
def store(request: pytest.FixtureRequest, postgres_server_url: str) -> Iterator[Store]:
    yield from backend_store(request, postgres_server_url)


@pytest.fixture
def site(store: Store) -> Store:
    """A clean store; an au site (Sydney) keying PoTR's system meter, the grid meter and
    an inverter by their serials."""
    store.reset()
    with store.pool.connection() as conn:
        add_gateway(conn, GATEWAY, SITE, "au", "Australia/Sydney")
        add_devices(conn, GATEWAY, {SYS_SN: SYSTEM, GRID_SN: GRID, "INV-0001": INVERTER})
    return store


def _series(n: int, first: float, rise: float) -> list[float]:
    """``n`` register values from ``first``, rising by ``rise`` plus a varying part (a
    quarter-Wh multiple: exact in a float) at each step."""
    values, v = [], first
    for k in range(n):
        values.append(v)
        v += rise + 0.25 * (k % 7)
    return values


def _hours(site: Store, serial: str, counter: int, start: datetime, end: datetime) -> MeterHours:
    return MeterHourReader(site.pool).hours(SITE, Region.AU, serial, counter, start, end)


def _mwh(wh: float) -> int:
    return round(wh * 1000)


def test_hours_by_hand_across_an_outage(site: Store) -> None:
    day = datetime(2026, 3, 2, tzinfo=UTC)
    # The system meter read every 5 minutes 00:00-01:20, then not until 03:40 (a gap
    # pair of 140 minutes), then every 5 minutes to 05:00.
    times = [day + 5 * MIN * k for k in range(17)] + [
        day + 3 * H + 40 * MIN + 5 * MIN * k for k in range(17)
    ]
    values = _series(len(times), 50_000.0, 12.5)
    values[17:] = [v + 777.5 for v in values[17:]]  # what the system delivered meanwhile
    wh = dict(zip(times, values, strict=True))
    # Its reverse register and the grid meter's export, to be told apart by serial.
    drew = [(t, SYSTEM, EXPORT_WH, 10.0 + k, 0) for k, t in enumerate(times)]
    export_times = [day + 15 * MIN * k for k in range(9)]
    exported = [2_000.0 + 40.5 * k for k in range(9)]
    rows: list[Row] = [(t, SYSTEM, IMPORT_WH, v, 0) for t, v in wh.items()]
    rows += drew + [(t, GRID, EXPORT_WH, v, 0) for t, v in zip(export_times, exported, strict=True)]
    site.write(rows, day.date())
    site.catch_up(now=day + 6 * H)

    start, end = day - H, day + 6 * H
    got = _hours(site, SYS_SN, IMPORT_WH, start, end)
    assert (got.device_id, got.match) == (SYSTEM, DeviceMatch.SERIAL)
    assert [h.start for h in got.hours] == [start + k * H for k in range(7)]
    assert all(h.end - h.start == H and h.device_id == SYSTEM for h in got.hours)
    figures = {h.start: (h.energy_mwh, h.flags, h.covered) for h in got.hours}
    t = day  # 00:00
    no_flags: frozenset[EnergyFlag] = frozenset()
    gap = frozenset({EnergyFlag.GAP})
    assert figures == {
        # The first sample (00:00) closes a bucket of the hour before: nothing before it.
        t - H: (None, no_flags, timedelta(0)),
        t: (_mwh(wh[t + H] - wh[t]), no_flags, H),
        # Readings to 01:20; the rest of the hour's energy lands with the 03:40 sample.
        t + H: (_mwh(wh[t + H + 20 * MIN] - wh[t + H]), gap, 20 * MIN),
        # The gap passes over the whole hour: no data (yet).
        t + 2 * H: (None, gap, timedelta(0)),
        # Receives the gap pair (01:20, 03:40] and 03:40-04:00.
        t + 3 * H: (_mwh(wh[t + 4 * H] - wh[t + H + 20 * MIN]), gap, 20 * MIN),
        t + 4 * H: (_mwh(wh[t + 5 * H] - wh[t + 4 * H]), no_flags, H),
        t + 5 * H: (None, no_flags, timedelta(0)),  # after the last sample: no bucket
    }
    assert [h.complete for h in got.hours] == [False, True, False, False, False, True, False]
    # The hours add up to the register's rise over the range, exactly.
    assert sum(h.energy_mwh or 0 for h in got.hours) == _mwh(wh[t + 5 * H] - wh[t])

    # The grid meter's export, by its serial: not the system meter's reverse register.
    grid = _hours(site, GRID_SN, EXPORT_WH, day, day + 2 * H)
    assert grid.device_id == GRID
    assert [h.energy_mwh for h in grid.hours] == [_mwh(4 * 40.5), _mwh(4 * 40.5)]


def test_a_sydney_fall_back_day_is_twenty_five_hours(site: Store) -> None:
    first = datetime(2026, 4, 5, tzinfo=SYDNEY).astimezone(UTC)  # 04-04 13:00Z (+11:00)
    last = datetime(2026, 4, 6, tzinfo=SYDNEY).astimezone(UTC)  # 04-05 14:00Z (+10:00)
    q = timedelta(minutes=15)
    n = (last - first) // q + 1
    times = [first + q * k for k in range(n)]
    wh = dict(zip(times, _series(n, 1_000.0, 30.0), strict=True))
    site.write([(t, SYSTEM, IMPORT_WH, v, 0) for t, v in wh.items()], first.date())
    site.catch_up(now=last + H)

    got = _hours(site, SYS_SN, IMPORT_WH, first, last)
    assert len(got.hours) == 25
    # 25 UTC hours, one per local hour: 02:00 twice (+11:00, then +10:00).
    local = [h.start.astimezone(SYDNEY) for h in got.hours]
    assert [x.hour for x in local] == [0, 1, 2, *range(2, 24)]
    assert (local[2].utcoffset(), local[3].utcoffset()) == (
        timedelta(hours=11),
        timedelta(hours=10),
    )
    for h in got.hours:
        assert (h.energy_mwh, h.complete) == (_mwh(wh[h.end] - wh[h.start]), True)


def test_a_meter_is_found_by_serial_or_as_the_one_kept_by_position(site: Store) -> None:
    t = datetime(2026, 3, 2, tzinfo=UTC)
    rows: list[Row] = [(t + 5 * MIN * k, SYSTEM, IMPORT_WH, 100.0 + k, 0) for k in range(13)]
    site.write(rows, t.date())
    site.catch_up(now=t + 2 * H)
    # The grid meter is keyed but has no readings yet: its hours are no data.
    assert _hours(site, GRID_SN, EXPORT_WH, t, t + H).hours[0].energy_mwh is None
    # A serial nothing on the site answers to: the system meter is another meter.
    with pytest.raises(MeterNotFoundError) as missing:
        _hours(site, "MTR-9999", IMPORT_WH, t, t + H)
    assert missing.value.reason is DeviceMatch.NONE
    with pytest.raises(MeterNotFoundError):  # the site's devices are au's, not es'
        MeterHourReader(site.pool).hours(SITE, Region.ES, SYS_SN, IMPORT_WH, t, t + H)

    # A meter the agent keys by position (no serial read) answers for the serial.
    with site.pool.connection() as conn:
        add_devices(conn, GATEWAY, {"rs485-u2": 21})
    site.write([(t + 15 * MIN * k, 21, IMPORT_WH, 5.0 * k, 0) for k in range(5)], t.date())
    site.catch_up(now=t + 2 * H)
    by_position = _hours(site, "MTR-9999", IMPORT_WH, t, t + H)
    assert (by_position.device_id, by_position.match) == (21, DeviceMatch.POSITION)
    assert by_position.hours[0].energy_mwh == _mwh(20.0)
    with site.pool.connection() as conn:
        add_devices(conn, GATEWAY, {"rs485-u3": 22})
    site.write([(t, 22, IMPORT_WH, 1.0, 0)], t.date())
    with pytest.raises(MeterNotFoundError) as two:
        _hours(site, "MTR-9999", IMPORT_WH, t, t + H)
    assert two.value.reason is DeviceMatch.AMBIGUOUS

    with pytest.raises(ValueError, match="Wh counter"):
        _hours(site, SYS_SN, metric("grid_w").id, t, t + H)
    with pytest.raises(ValueError, match="15-minute"):
        _hours(site, SYS_SN, IMPORT_WH, t + MIN, t + H + MIN)
    assert _hours(site, SYS_SN, PV_WH, t, t + H).hours[0].energy_mwh is None


def test_the_stored_buckets_rules_hold_in_the_readers_sql(site: Store) -> None:
    """The reader sums buckets per hour in the server: buckets stored directly with the
    corner cases of "measured", flags and coverage, figures by hand."""
    t = datetime(2026, 3, 2, tzinfo=UTC)
    q = timedelta(minutes=15)
    buckets = [  # (start, mWh, samples, covered, flags)
        # Hour 0: samples but nothing spanned, no energy, no gap: no data.
        *((t + k * q, 0, 3, timedelta(0), []) for k in range(4)),
        # Hour 1: a gap pair's bucket holding a sample, zero energy (night): zero.
        (t + H, 0, 1, timedelta(0), ["gap"]),
        # Hour 2: a gap pair only passes over it: no data, flagged gap.
        (t + 2 * H + q, 0, 0, timedelta(0), ["gap"]),
        # Hour 3: energy with flags of two buckets, part of the hour covered.
        (t + 3 * H, 500, 2, 5 * MIN, ["reset"]),
        (t + 3 * H + 2 * q, 700, 3, q, ["reset", "rejected"]),
        # Hour 4: nothing stored.
    ]
    with site.pool.connection() as conn:
        conn.cursor().executemany(
            "INSERT INTO telemetry.energy_15m (device_id, metric_id, bucket, energy_mwh,"
            " samples, covered, flags) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(SYSTEM, IMPORT_WH, *b) for b in buckets],
        )
    got = _hours(site, SYS_SN, IMPORT_WH, t, t + 5 * H)
    none: frozenset[EnergyFlag] = frozenset()
    gap = frozenset({EnergyFlag.GAP})
    assert [(h.energy_mwh, h.flags, h.covered) for h in got.hours] == [
        (None, none, timedelta(0)),
        (0, gap, timedelta(0)),
        (None, gap, timedelta(0)),
        (1_200, frozenset({EnergyFlag.RESET, EnergyFlag.REJECTED}), 20 * MIN),
        (None, none, timedelta(0)),
    ]
    # Adelaide's hours start on the half hour: the same buckets fall otherwise (00:30
    # takes hour 1's sample, 02:30 and 03:30 one energy bucket each).
    half = _hours(site, SYS_SN, IMPORT_WH, t + 30 * MIN, t + 4 * H + 30 * MIN)
    assert [h.energy_mwh for h in half.hours] == [0, None, 500, 700]
