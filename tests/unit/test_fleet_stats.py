"""Fleet stats: reconnect times survive the wire and merge; their spread in 1 s windows."""

from __future__ import annotations

from simulators.fleet.stats import WorkerStats, merged, most_in_window


def test_most_in_window_counts_the_busiest_second() -> None:
    assert most_in_window([]) == 0
    assert most_in_window([5.0]) == 1
    assert most_in_window([0.0, 0.5, 1.0, 1.01, 3.0]) == 3  # 0.0 .. 1.0 inclusive
    assert most_in_window([3.0, 0.2, 0.1, 2.0, 2.9, 2.95]) == 4  # 2.0 .. 3.0, any order
    assert most_in_window([0.0, 0.4, 0.8], window_s=0.5) == 2


def test_reconnect_times_cross_the_wire_and_merge() -> None:
    a, b = WorkerStats(), WorkerStats()
    a.count_reconnect(100.1234)
    b.count_reconnect(101.5)
    b.count_reconnect(101.7)
    back = WorkerStats.from_wire(a.to_wire())
    assert back.reconnect_times == [100.123]
    total = merged([back, WorkerStats.from_wire(b.to_wire())])
    assert sorted(total.reconnect_times) == [100.123, 101.5, 101.7]
    assert most_in_window(total.reconnect_times) == 2
