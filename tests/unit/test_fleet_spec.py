"""Fleet spec: region mix, outages, the gateway plan, latency histograms."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from contracts.topics import GATEWAY_ID_RE, Region
from simulators.fleet.spec import (
    FleetSpec,
    Outage,
    assign_regions,
    default_sim_start,
    parse_region_mix,
    plan,
)
from simulators.fleet.stats import LatencyHistogram, WorkerStats, merged


def test_region_mix_parses_weights_and_refuses_unknown_regions() -> None:
    assert parse_region_mix("au=0.5, us=0.3,es=0.2") == {
        Region.AU: 0.5,
        Region.US: 0.3,
        Region.ES: 0.2,
    }
    assert parse_region_mix("es") == {Region.ES: 1.0}
    with pytest.raises(ValueError, match="unknown region 'fr'"):
        parse_region_mix("fr=1")


def test_regions_are_assigned_in_proportion() -> None:
    counts = Counter(assign_regions({Region.AU: 2, Region.US: 1, Region.ES: 1}, 400))
    assert counts == {Region.AU: 200, Region.US: 100, Region.ES: 100}


def test_plan_gives_valid_unique_ids_and_spreads_phases_over_one_interval() -> None:
    spec = FleetSpec(count=100, cadence_s=300, speed=60)
    plans = plan(spec)
    assert len({p.gateway_id for p in plans}) == 100
    assert all(GATEWAY_ID_RE.match(p.gateway_id) for p in plans)
    assert min(p.phase_s for p in plans) == 0
    assert max(p.phase_s for p in plans) < spec.batch_interval_s == 5.0
    assert spec.nominal_rate == pytest.approx(20.0)


def test_outage_parses_and_picks_the_first_fraction_of_the_fleet() -> None:
    o = Outage.parse("10:20:0.25")
    assert (o.start_s, o.duration_s, o.fraction) == (10, 20, 0.25)
    assert [o.affects(i, 8) for i in range(8)] == [True, True] + [False] * 6
    assert o.active(10)
    assert o.active(29.9)
    assert not o.active(30)
    with pytest.raises(ValueError, match="START:DURATION"):
        Outage.parse("10")


def test_default_start_keeps_the_last_sample_out_of_the_future() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    spec = FleetSpec(count=1, cadence_s=300, speed=60, duration_s=60)
    start = default_sim_start(spec, now)
    assert (now - start).total_seconds() == 60 * 60 + 300


def test_bad_id_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="id prefix"):
        FleetSpec(count=1, id_prefix="_Bad")


def test_histogram_quantiles_are_within_resolution_and_merge() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    for i in range(1, 1001):
        (a if i % 2 else b).add(i / 1000)  # 1 ms … 1 s
    a.merge(b)
    assert a.n == 1000
    p50 = a.quantile(0.5)
    assert p50 is not None
    assert p50 == pytest.approx(0.5, rel=0.06)
    assert a.quantile(1.0) == pytest.approx(1.0)
    assert LatencyHistogram().quantile(0.5) is None


def test_worker_stats_round_trip_and_merge() -> None:
    s = WorkerStats(gateways=3, sent=5)
    s.puback_latency.add(0.002)
    back = WorkerStats.from_wire(s.to_wire())
    total = merged([back, back])
    assert total.gateways == 6
    assert total.sent == 10
    assert total.puback_latency.n == 2
