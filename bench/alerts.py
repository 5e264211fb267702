"""Alert rule evaluation (issue 16, the pure part): readings per second evaluated against
1,000 rules, beside the bare iteration over the same readings in the same run.

    .venv/bin/python -m bench.alerts                        # 1,000 devices x 40 reports
    .venv/bin/python -m bench.alerts --devices 200 --steps 10   # quick

Rules (``--rules``, 1,000): mostly thresholds (95 %) on the catalogue's gauges, each on
the device kinds that report its metric (inverter, hybrid inverter, meter, battery),
``above`` or ``below`` at 1.5-4 standard deviations from the metric's typical value, with
a deadband of a fifth of one and on/off delays of 0-15 min; the rest battery-health and
event rules (which samples never meet), validated by the real loader (``parse_rules``).

Readings: ``--devices`` devices (40 % inverters, 30 % meters, 20 % batteries, 10 % hybrid
inverters), each reporting every gauge and counter of its kind every 5 minutes for
``--steps`` reports; values normal around each metric's typical value, and one device in
fifty drifting by 3 standard deviations for a stretch, so conditions open and close.
One reading = one (device, metric, ts, value) row, as ingest counts them.

Figures: the baseline (a bare ``for`` over the readings), ``Evaluator.samples`` over all
of them (fresh state), and the same readings met by every rule without the index (on the
first ``--naive`` readings: the cost the metric index saves).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from bench.common import report
from cloud.alerts.evaluate import Evaluator, Sample, Subject
from cloud.alerts.rules import RuleSet, ThresholdRule, parse_rules
from contracts.metrics import BY_NAME, MetricKind

#: Typical value and standard deviation of each gauge a device kind reports.
TYPICAL: dict[str, tuple[float, float]] = {
    "pv_w": (2500, 900),
    "pv_va": (2600, 900),
    "pv_var": (0, 150),
    "pv_pf_pct": (97, 1.5),
    "pv_ac_a": (11, 4),
    "pv_l1_v": (236, 3),
    "pv_hz": (50, 0.04),
    "pv_dc_w": (2600, 950),
    "pv_cabinet_c": (42, 8),
    "pv_limit_pct": (90, 4),
    "grid_w": (300, 1200),
    "grid_l1_w": (100, 400),
    "grid_l2_w": (100, 400),
    "grid_l3_w": (100, 400),
    "grid_va": (1500, 600),
    "grid_var": (0, 200),
    "grid_pf_pct": (92, 3),
    "grid_a": (7, 3),
    "grid_l1_v": (235, 3),
    "grid_l2_v": (235, 3),
    "grid_l3_v": (235, 3),
    "grid_hz": (50, 0.04),
    "battery_w": (0, 1500),
    "battery_soc_pct": (55, 15),
    "battery_soh_pct": (92, 3),
    "battery_v": (52, 1.5),
    "battery_a": (0, 25),
}
PV = [m for m in TYPICAL if m.startswith("pv_")]
GRID = [m for m in TYPICAL if m.startswith("grid_")]
BATTERY = [m for m in TYPICAL if m.startswith("battery_")]
#: Gauges and counters per device kind (counters meet no threshold: the index skips them).
REPORTS: dict[str, list[str]] = {
    "inverter": [*PV, "pv_wh"],
    "meter": [*GRID, "import_wh", "export_wh"],
    "battery": [*BATTERY, "battery_charge_wh", "battery_discharge_wh"],
    "hybrid_inverter": [*PV, *BATTERY, "pv_wh", "battery_charge_wh", "battery_discharge_wh"],
}
KIND_OF_METRIC = {
    m: [k for k, ms in REPORTS.items() if m in ms] for m in TYPICAL if m != "battery_soh_pct"
}
EVENT_RULES: list[dict[str, Any]] = [
    {"kind": "state", "raise_on": ["device.faulty"], "clear_on": ["device.online"]},
    {"kind": "gateway_offline", "after_min": 30},
    {"kind": "config", "statuses": ["failed", "drifted"]},
    {"kind": "completeness", "below_pct": 80},
]


def make_rules(n: int, rng: random.Random) -> RuleSet:
    raws: list[dict[str, Any]] = []
    metrics = sorted(KIND_OF_METRIC)
    while len(raws) < n * 95 // 100:
        metric = rng.choice(metrics)
        mean, sd = TYPICAL[metric]
        above = rng.random() < 0.6
        k = rng.uniform(1.5, 4.0)
        kinds = KIND_OF_METRIC[metric]
        raw = {
            "id": f"t{len(raws)}",
            "kind": "threshold",
            "severity": rng.choice(["low", "low", "low", "medium", "high"]),
            "title": f"{metric} {'high' if above else 'low'}",
            "metric": metric,
            "above" if above else "below": round(mean + (k if above else -k) * sd, 3),
            "deadband": round(sd / 5, 3),
            "on_delay_s": rng.choice([0, 300, 600, 900]),
            "off_delay_s": rng.choice([0, 300, 600, 900]),
            "device_kinds": rng.sample(kinds, rng.randint(1, len(kinds))),
        }
        try:  # a level outside the metric's range (a percentage past 100) is refused
            ThresholdRule.model_validate(raw)
        except ValidationError:
            continue
        raws.append(raw)
    while len(raws) < n:
        i = len(raws)
        if i % 5 == 0:
            extra: dict[str, Any] = {"kind": "battery_soh", "below_pct": rng.uniform(60, 80)}
        else:
            extra = EVENT_RULES[i % len(EVENT_RULES)]
        raws.append({"id": f"e{i}", "severity": "medium", "title": f"Rule {i}", **extra})
    return parse_rules("es", {"rules": raws})


def make_readings(devices: int, steps: int, rng: random.Random) -> list[Sample]:
    kinds = ["inverter"] * 4 + ["meter"] * 3 + ["battery"] * 2 + ["hybrid_inverter"]
    fleet = [
        (Subject(i // 4, f"gw-{i // 4}", f"dev-{i}"), kinds[i % len(kinds)]) for i in range(devices)
    ]
    start = datetime(2026, 1, 10, tzinfo=UTC)
    counters: dict[tuple[int, str], float] = {}
    out: list[Sample] = []
    for step in range(steps):
        ts = start + timedelta(minutes=5 * step)
        for i, (subject, kind) in enumerate(fleet):
            # one device in fifty drifts 3 sd off for the middle third of the run
            drift = 3.0 if i % 50 == 0 and steps // 3 <= step < 2 * steps // 3 else 0.0
            for metric in REPORTS[kind]:
                if BY_NAME[metric].kind is MetricKind.COUNTER:
                    value = counters.get((i, metric), 0.0) + rng.uniform(0, 300)
                    counters[(i, metric)] = value
                else:
                    mean, sd = TYPICAL[metric]
                    value = rng.gauss(mean + drift * sd, sd)
                out.append(Sample(subject, metric, ts, value, kind))  # type: ignore[arg-type]
    return out


def naive(rules: RuleSet, readings: list[Sample]) -> int:
    """Every reading against every threshold, without the index: the comparisons only."""
    thresholds = [r for r in rules.enabled if isinstance(r, ThresholdRule)]
    beyond = 0
    for s in readings:
        for r in thresholds:
            if r.metric == s.metric and (not r.device_kinds or s.device_kind in r.device_kinds):
                beyond += s.value > r.level if r.above is not None else s.value < r.level
    return beyond


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=1_000)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--steps", type=int, default=40, help="5-minute reports per device")
    parser.add_argument("--naive", type=int, default=20_000, help="readings for the naive run")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rules = make_rules(args.rules, rng)
    readings = make_readings(args.devices, args.steps, rng)
    n = len(readings)

    t0 = time.perf_counter()
    for _ in readings:
        pass
    baseline = n / (time.perf_counter() - t0)

    evaluator = Evaluator(rules)
    t0 = time.perf_counter()
    transitions = evaluator.samples(readings)
    elapsed = time.perf_counter() - t0
    rate = n / elapsed

    few = readings[: args.naive]
    t0 = time.perf_counter()
    naive(rules, few)
    naive_rate = len(few) / (time.perf_counter() - t0)

    raised = sum(1 for t in transitions if type(t).__name__ == "Raised")
    print(
        f"{len(rules.rules):,} rules; {n:,} readings ({args.devices:,} devices x {args.steps}"
        f" reports); {raised:,} raised, {len(transitions) - raised:,} cleared,"
        f" {len(evaluator.snapshot().conditions):,} conditions open at the end"
    )
    report("baseline: bare iteration over the readings", baseline, baseline)
    report("Evaluator.samples (metric index)", rate, baseline)
    report(f"naive: every rule per reading ({len(few):,})", naive_rate, baseline)
    print(f"{'':<44} {elapsed / n * 1e6:>12.2f} µs per reading evaluated")


if __name__ == "__main__":
    main()
