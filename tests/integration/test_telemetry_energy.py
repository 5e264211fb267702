"""Energy from counters in the store (issue 14), on both backends: the maintenance job
keeps the 15-minute buckets from what the write path marked dirty, local days sum them
in the site's zone, and a week of backfilled data corrects every day it touched and
announces exactly those days (``energy.revised``). Expected figures are worked out by
hand in each test; the property test holds the incremental upkeep to a computation from
all samples at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.adapters.mqtt import InboundMessage
from cloud.ingest import IngestPipeline
from cloud.telemetry import TelemetryStore
from cloud.telemetry.energy import aggregate, local_periods, site_buckets
from cloud.telemetry.energy_models import EnergyFigure, EnergyFlag
from cloud.telemetry.energy_store import load_buckets, site_energy
from contracts.timeutil import to_wire
from tests.integration.telemetry_world import (
    Row,
    Store,
    add_devices,
    add_gateway,
    backend_store,
)

pytestmark = pytest.mark.integration

PV_WH = 10  # contracts.metrics: pv_wh
SITE, DEVICE, GATEWAY = 5, 7, "gw-energy-1"
MIN = timedelta(minutes=1)
Q = timedelta(minutes=15)


@pytest.fixture(scope="module", params=["plain", "timescale"])
def store(request: pytest.FixtureRequest, postgres_server_url: str) -> Iterator[Store]:
    yield from backend_store(request, postgres_server_url)


@pytest.fixture
def site(store: Store) -> Store:
    """A clean store with one ES site (Europe/Madrid) whose gateway has device 7."""
    return _fresh(store)


def _fresh(store: Store) -> Store:
    store.reset()
    with store.pool.connection() as conn:
        add_gateway(conn, GATEWAY, SITE, "es", "Europe/Madrid")
        add_devices(conn, GATEWAY, {"SN-PV": DEVICE})
        conn.commit()
    return store


def _rows(samples: list[tuple[datetime, float]]) -> list[Row]:
    return [(ts, DEVICE, PV_WH, value, 0) for ts, value in samples]


def _buckets(store: Store) -> dict[datetime, tuple[int, int, timedelta, frozenset[EnergyFlag]]]:
    far = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    with store.pool.connection() as conn:
        got = load_buckets(conn, [DEVICE], PV_WH, *far)[DEVICE]
    return {b.start: (b.energy_mwh, b.samples, b.covered, b.flags) for b in got}


def _days(store: Store, first: date, last: date) -> dict[date, tuple[Decimal, bool]]:
    with store.pool.connection() as conn:
        energy = site_energy(conn, SITE, PV_WH, "day", first, last)
    assert energy is not None
    return {f.period.day: (f.energy_wh, f.complete) for f in energy.figures}


def _revisions(store: Store) -> list[dict[str, Any]]:
    with store.pool.connection() as conn:
        rows = conn.execute(
            "SELECT payload FROM telemetry.outbox WHERE name = 'energy.revised' ORDER BY id"
        ).fetchall()
    return [r[0] for r in rows]


def test_buckets_and_a_day_by_hand(site: Store) -> None:
    t = datetime(2026, 11, 30, 21, 50, tzinfo=UTC)  # 22:50 in Madrid
    values = [1000.0, 1010.0, 1030.0, 1060.0, 1100.0, 1150.0, 1210.0, 5.0]
    site.write(_rows([(t + 5 * MIN * i, v) for i, v in enumerate(values)]), t.date())
    site.catch_up(now=t + 40 * MIN)
    # Buckets are (start, start + 15 min]; a pair's energy goes to its later sample's.
    # (21:45, 22:00]: 21:50 opens, +10 at 21:55, +20 at 22:00; 10 min covered.
    # (22:00, 22:15]: +30, +40, +50. (22:15, 22:30]: +60 at 22:20, then 5 < 1210 at
    # 22:25 is a reset: 5 Wh from zero.
    b0 = datetime(2026, 11, 30, 21, 45, tzinfo=UTC)
    assert _buckets(site) == {
        b0: (30_000, 3, 10 * MIN, frozenset()),
        b0 + Q: (120_000, 3, Q, frozenset()),
        b0 + 2 * Q: (65_000, 2, 10 * MIN, frozenset({EnergyFlag.RESET})),
    }
    # All of it on Madrid's 30 November (the last sample is 23:25 local).
    assert _days(site, date(2026, 11, 30), date(2026, 11, 30)) == {
        date(2026, 11, 30): (Decimal("215.000"), False)
    }


def test_a_meter_swap_between_two_samples(site: Store) -> None:
    t = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    with site.pool.connection() as conn:
        conn.execute(
            "INSERT INTO telemetry.meter_swaps (device_id, metric_id, replaced_at,"
            " old_register_wh, new_register_wh) VALUES (%s, %s, %s, 5004.5, 12.0)",
            (DEVICE, PV_WH, t + 7 * MIN),
        )
        conn.commit()
    site.write(_rows([(t, 5000.0), (t + Q, 20.0)]), t.date())
    site.catch_up(now=t + Q)
    # The old meter ran 5000 -> 5004.5, the new one 12 -> 20: 4.5 + 8 = 12.5 Wh.
    assert _buckets(site)[t] == (12_500, 1, Q, frozenset({EnergyFlag.METER_SWAP}))


def test_a_week_long_outage_backfilled_corrects_and_announces_exactly_its_days(
    site: Store,
) -> None:
    """Through ingest's pipeline (validation, streams, the store's write): the readings
    arrive as the gateway's telemetry messages of one stream."""
    # Madrid is UTC+1 all of this time. The meter adds 100 Wh every 15 minutes.
    start = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # local 24 Nov 00:00
    cut = datetime(2026, 11, 25, 22, 45, tzinfo=UTC)  # local 25 Nov 23:45: last before
    back = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)  # local 3 Dec 00:00: first after
    end = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    stream = uuid.uuid4()

    def ingest(lo: datetime, hi: datetime) -> None:
        # seq n is the n-th sample of the series: the buffer's order, whenever it arrives.
        n0, n1 = (lo - start) // Q, (hi - start) // Q
        messages = [_telemetry(stream, n + 1, start + Q * n, 100.0 * n) for n in range(n0, n1 + 1)]
        store = TelemetryStore(site.pool, write_mode=site.write_mode, backend=site.backend)
        outcome = IngestPipeline(site.pool, store).process(messages)
        assert (outcome.readings_added, outcome.dead_letters) == (len(messages), 0)

    ingest(start, cut)
    site.catch_up(now=cut + 5 * MIN)
    # The gateway is back (12-03 00:00 local) and sends live data first: the pair across
    # the outage is a gap, so 25 Nov's last bucket and every bucket after it until today
    # say so.
    ingest(back, end)
    site.catch_up(now=end)
    before = _days(site, date(2026, 11, 25), date(2026, 12, 2))
    assert all(not complete for _, complete in before.values())
    assert before[date(2026, 11, 26)][0] == 0
    seen = len(_revisions(site))
    # Then its buffer: the week, oldest first, in two batches.
    middle = cut + (back - cut) / 2
    ingest(cut + Q, middle)
    ingest(middle + Q, back - Q)
    site.catch_up(now=end + 30 * MIN)
    # Every local day from 24 Nov to 2 Dec is whole: 96 buckets of 100 Wh. (The pair
    # across the outage had ended at 23:00Z on 2 Dec, closing that day's last bucket:
    # today never held its energy.)
    after = _days(site, date(2026, 11, 24), date(2026, 12, 2))
    whole = (Decimal("9600.000"), True)
    assert after == {date(2026, 11, 24) + timedelta(days=i): whole for i in range(9)}
    announced = _revisions(site)[seen:]
    days = sorted({d for event in announced for d in event["days"]})
    assert days == [(date(2026, 11, 25) + timedelta(days=i)).isoformat() for i in range(8)]
    assert {event["site_id"] for event in announced} == {SITE}


def _telemetry(stream: uuid.UUID, seq: int, ts: datetime, value: float) -> InboundMessage:
    payload = {
        "v": 1,
        "stream_id": str(stream),
        "seq": seq,
        "readings": [{"device": "SN-PV", "ts": to_wire(ts), "values": {"pv_wh": value}}],
    }
    return InboundMessage(
        f"potr/v1/es/{GATEWAY}/telemetry", orjson.dumps(payload), 1, 1, datetime.now(UTC)
    )


def test_days_and_months_summed_by_the_server_equal_the_energy_functions(site: Store) -> None:
    # Two devices (the second only part of the time, and with a reset) across Madrid's
    # fall-back day (25 Oct 2026: 25 hours) and a month boundary.
    with site.pool.connection() as conn:
        add_devices(conn, GATEWAY, {"SN-PV2": 11})
    t0 = datetime(2026, 10, 23, 22, 0, tzinfo=UTC)
    rows: list[Row] = []
    for i in range(4 * 24 * 12):  # twelve days of 15-minute samples, a gap each day
        if i % 96 in (40, 41, 42):
            continue
        rows.append((t0 + Q * i, DEVICE, PV_WH, 50.0 * i, 0))
        if 200 <= i < 700:
            rows.append((t0 + Q * i, 11, PV_WH, 30.0 * (i % 300), 0))  # resets at 300, 600
    site.write(rows, t0.date())
    site.catch_up(now=t0 + 20 * Q * 96)
    first, last = date(2026, 10, 24), date(2026, 11, 3)
    with site.pool.connection() as conn:
        zone = ZoneInfo("Europe/Madrid")
        periods = {u: local_periods(zone, first, last, u) for u in ("day", "month")}
        per_device = load_buckets(
            conn, [DEVICE, 11], PV_WH, periods["month"][0].start, periods["month"][-1].end
        )
        for unit in ("day", "month"):
            got = site_energy(conn, SITE, PV_WH, unit, first, last)
            assert got is not None
            want = aggregate(site_buckets(per_device), periods[unit])
            assert got.figures == want, unit
    fall_back = next(f for f in got_days(site, first, last) if f.period.day == date(2026, 10, 25))
    assert fall_back.period.length == timedelta(hours=25)


def test_site_days_are_kept_for_the_devices_that_count_the_metric(site: Store) -> None:
    # The site's meter (device 8) counts import, not PV: it must not leave the PV day
    # incomplete. Samples every 5 min, +10 Wh each, from 23:55 to 23:05 Madrid: the
    # local day 30 Nov (UTC 29 Nov 23:00 to 30 Nov 23:00) holds 288 pairs = 2,880 Wh.
    with site.pool.connection() as conn:
        add_devices(conn, GATEWAY, {"SN-MTR": 8})
    t0, day = datetime(2026, 11, 29, 22, 55, tzinfo=UTC), date(2026, 11, 30)
    pv = [(t0 + 5 * MIN * i, DEVICE, PV_WH, 10.0 * i, 0) for i in range(291)]
    meter = [(t0 + 5 * MIN * i, 8, 52, 3.0 * i, 0) for i in range(291)]  # import_wh
    site.write(pv + meter, t0.date())
    site.catch_up(now=t0 + timedelta(days=2))
    assert _days(site, day, day) == {day: (Decimal(2880), True)}
    with site.pool.connection() as conn:
        stored = conn.execute(
            "SELECT devices, energy_mwh FROM telemetry.energy_site_1d"
            " WHERE site_id = %s AND metric_id = %s AND day = %s",
            (SITE, PV_WH, day),
        ).fetchall()
    assert stored == [([DEVICE], 2_880_000)]
    # The stored day is what is read ...
    _sql(site, "UPDATE telemetry.energy_site_1d SET energy_mwh = 1")
    assert _days(site, day, day) == {day: (Decimal("0.001"), True)}
    # ... but only for the devices it was summed for: otherwise the buckets are.
    _sql(site, "UPDATE telemetry.energy_site_1d SET devices = '{7, 8}'")
    assert _days(site, day, day) == {day: (Decimal(2880), True)}
    with site.pool.connection() as conn:
        month = site_energy(conn, SITE, PV_WH, "month", day, day)
    assert month is not None
    # November also holds the pair ending at local midnight of the 29th/30th: +10 Wh.
    assert [(f.energy_wh, f.complete) for f in month.figures] == [(Decimal(2880) + 10, False)]


def _sql(store: Store, statement: str) -> None:
    with store.pool.connection() as conn:
        conn.execute(statement)  # type: ignore[arg-type]
        conn.commit()


def got_days(site: Store, first: date, last: date) -> list[EnergyFigure]:
    with site.pool.connection() as conn:
        energy = site_energy(conn, SITE, PV_WH, "day", first, last)
    assert energy is not None
    return energy.figures


# -- property: the incremental upkeep equals the counter differences ---------------------

_steps = st.lists(
    st.tuples(
        st.integers(1, 40),  # minutes to the next sample
        st.integers(0, 500),  # Wh made over the pair
        st.sampled_from(["run", "run", "reset", "swap"]),  # how the register moves
    ),
    min_size=2,
    max_size=40,
)
#: Madrid's fall-back (25 Oct 2026, 25 h) and spring-forward (29 Mar 2026, 23 h) nights,
#: and an ordinary one; the series start two hours before local midnight.
_STARTS = [
    datetime(2026, 10, 24, 20, 0, tzinfo=UTC),
    datetime(2026, 3, 28, 21, 0, tzinfo=UTC),
    datetime(2026, 11, 29, 21, 0, tzinfo=UTC),
]
MADRID = ZoneInfo("Europe/Madrid")


def _bucket_of(t: datetime) -> datetime:
    """The start of the 15-minute bucket a pair ending at ``t`` counts in: (start, end]."""
    floor = t - (t - datetime(2000, 1, 1, tzinfo=UTC)) % Q
    return floor - Q if floor == t else floor


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=_steps,
    start=st.sampled_from(_STARTS),
    arrival=st.permutations(range(4)),
    refresh_between=st.booleans(),
)
def test_hours_and_days_kept_batch_by_batch_equal_the_counter_differences(
    site: Store,
    steps: list[tuple[int, int, str]],
    start: datetime,
    arrival: list[int],
    refresh_between: bool,
) -> None:
    _fresh(site)
    t, value = start, 1000.0
    samples: list[tuple[datetime, float]] = [(t, value)]
    swaps: list[tuple[datetime, float, float]] = []
    made: dict[datetime, int] = {}  # mWh by the bucket of each pair's later sample
    for minutes, wh, how in steps:
        before, t = value, t + minutes * MIN
        if how == "swap":  # half on the old meter, the rest on a new one from 7 Wh
            old = before + wh // 2
            swaps.append((t - minutes * MIN / 2, old, 7.0))
            value = 7.0 + (wh - wh // 2)
            got = (old - before) + (value - 7.0)
        else:
            value = float(wh) if how == "reset" else before + wh
            # A counter that drops restarted from zero; one that did not drop ran on.
            got = value if value < before else value - before
        samples.append((t, value))
        made[_bucket_of(t)] = made.get(_bucket_of(t), 0) + round(got * 1000)
    with site.pool.connection() as conn:
        for at, old, new in swaps:
            conn.execute(
                "INSERT INTO telemetry.meter_swaps (device_id, metric_id, replaced_at,"
                " old_register_wh, new_register_wh) VALUES (%s, %s, %s, %s, %s)",
                (DEVICE, PV_WH, at, old, new),
            )
        conn.commit()
    # Four slices of the series arrive in a shuffled order: late data at every turn.
    size = -(-len(samples) // 4)
    slices = [samples[i * size : (i + 1) * size] for i in range(4)]
    for i in arrival:
        if slices[i]:
            site.write(_rows(slices[i]), t.date())
            if refresh_between:
                site.catch_up(now=t)
    site.catch_up(now=t)
    first, last = start.astimezone(MADRID).date(), t.astimezone(MADRID).date()
    by_day: dict[date, int] = {}
    by_hour: dict[datetime, int] = {}  # Madrid's hours are whole UTC hours
    for bucket, mwh in made.items():
        day = bucket.astimezone(MADRID).date()
        by_day[day] = by_day.get(day, 0) + mwh
        hour = bucket.replace(minute=0)
        by_hour[hour] = by_hour.get(hour, 0) + mwh
    with site.pool.connection() as conn:
        days = site_energy(conn, SITE, PV_WH, "day", first, last)
        hours = site_energy(conn, SITE, PV_WH, "hour", first, last)
    assert days is not None
    assert hours is not None
    assert {f.period.day: f.energy_mwh for f in days.figures if f.energy_mwh} == {
        d: e for d, e in by_day.items() if e
    }
    assert {f.period.start: f.energy_mwh for f in hours.figures if f.energy_mwh} == {
        h: e for h, e in by_hour.items() if e
    }
