"""The monthly pack: every report of the month just ended for each region, and each
report across the regions, sent to the admins once a month.

**Across regions without moving raw telemetry.** Each region's figures are computed by
that region's :class:`~cloud.reports.ReportsReader`, over that region's database (its
pool), next to its data; what leaves the region is the finished table — a few dozen
rows of counts, kWh and money per report. The cross-region table is
:func:`~cloud.reports.tables.combine` of the regions' tables: parts added row by row
(by day, severity, technician, currency and zone), ratios worked out again from the
added parts, never averaged. The demo's single database hands :func:`build_pack` one
reader per region over it. With a database per region, the cross-region page and route
take the process's own reader and the other regions' reports APIs
(:class:`~cloud.reports.remote.RemoteReports`, asked with the caller's token;
:func:`combined_report` raises :class:`RegionsMissing` rather than total fewer
regions). The pack job has no caller's token: in that deployment each region's process
(``POTR_SERVICES_REGION``, :class:`ServicesSettings`) sends its own region's admins a
pack from its own reader only (ARCHITECTURE 151).

The job (:func:`run_monthly_packs`) looks at the clock every ``check_s``; from
``hour`` UTC on the 1st (later days too, if the process was down) it builds the pack
of the previous month and calls ``send`` (the composition root's: notify's delivery
to the admins, with a notification id derived from the month, so a restart that sends
again reaches nobody twice). A failed build or send is tried at the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.reports.reader import ReportsReader
from cloud.reports.tables import ReportTable, cell_text, combine
from cloud.scope import Scope
from contracts.topics import Region

__all__ = [
    "Pack",
    "PackSettings",
    "RegionUnavailable",
    "RegionsMissing",
    "ServicesSettings",
    "TableSource",
    "build_pack",
    "combined_report",
    "pack_month_due",
    "run_monthly_packs",
]

log = logging.getLogger(__name__)


class TableSource(Protocol):
    """Where a region's finished table comes from: its :class:`ReportsReader` (next to
    its data) or, from another region's process, that region's reports API
    (:class:`cloud.reports.remote.CallerTables`). ``None``: no report in ``scope``."""

    def report(self, name: str, month: date, *, scope: Scope) -> ReportTable | None: ...


class RegionUnavailable(Exception):
    """A region's table could not be had (its API did not answer, or not as expected)."""

    def __init__(self, region: Region, reason: str) -> None:
        super().__init__(f"region {region.value!r}: {reason}")
        self.region = region
        self.reason = reason


class RegionsMissing(Exception):
    """Some regions' tables could not be had: a total without them would be silently
    partial, so there is none. ``missing``: each missing region and why."""

    def __init__(self, missing: Mapping[Region, str]) -> None:
        self.missing = dict(missing)
        names = ", ".join(r.value for r in self.missing)
        super().__init__(f"no answer from region(s) {names}")


class PackSettings(BaseSettings):
    """``POTR_REPORTS_PACK_HOUR``: the UTC hour of the 1st from which the previous
    month's pack goes out; ``POTR_REPORTS_PACK_CHECK_S``: how often the job looks."""

    model_config = SettingsConfigDict(
        env_prefix="POTR_REPORTS_PACK_", extra="ignore", hide_input_in_errors=True
    )

    hour: int = Field(default=6, ge=0, le=23)
    check_s: float = Field(default=600.0, gt=0, le=3600)


class ServicesSettings(BaseSettings):
    """``POTR_SERVICES_REGION``: the region a ``potr services`` process serves, in a
    deployment with a database per region; its monthly pack is then that region's own
    (:func:`build_pack` with ``only``), to that region's admins. Unset: the process
    serves every region from one database (the demo), and the pack combines them."""

    model_config = SettingsConfigDict(
        env_prefix="POTR_SERVICES_", extra="ignore", hide_input_in_errors=True
    )

    region: Region | None = None


@dataclass(frozen=True)
class Pack:
    """A month's pack: per report, each region's table and the combined one — or, with
    ``region``, that one region's tables only (no combined ones)."""

    month: date
    regional: dict[str, list[ReportTable]] = field(default_factory=dict)
    combined: dict[str, ReportTable] = field(default_factory=dict)
    #: The one region the pack was built for; None: every region, and across them.
    region: Region | None = None
    #: Seconds each report took, all regions together (the benchmark reads them).
    seconds: dict[str, float] = field(default_factory=dict)

    def headline(self) -> dict[str, str]:
        """The figures the pack's message quotes — across the regions, or the pack's one
        region's — written as the reports write them: fleet energy, performance ratio
        and availability; jobs and first-time fix; alarms raised; savings per currency
        ("" where not computed)."""
        out: dict[str, str] = {}
        quoted_tables = self._quoted()
        quoted = {
            "fleet": {"energy_kwh": "energy_kwh", "performance_ratio": "performance_ratio",
                      "availability": "availability"},
            "mosie": {"jobs": "jobs", "first_time_fix": "first_time_fix_rate"},
            "alerts": {"alarms": "raised"},
        }  # fmt: skip
        for name, fields in quoted.items():
            table = quoted_tables.get(name)
            total = table.totals[0] if table is not None else {}
            for param, key in fields.items():
                out[param] = cell_text(table.column(key), total.get(key)) if table else ""
        revenue = quoted_tables.get("revenue")
        savings = revenue.totals if revenue is not None and revenue.rows else []
        out["savings"] = (
            ", ".join(
                f"{t['currency']} {cell_text(revenue.column('savings'), t.get('savings'))}"
                for t in savings
                if revenue is not None
            )
            or "-"
        )
        return out

    def _quoted(self) -> dict[str, ReportTable]:
        """The table of each report the headline quotes: the combined one, or the one
        region's."""
        if self.region is None:
            return self.combined
        return {name: tables[0] for name, tables in self.regional.items() if tables}

    def tables(self) -> list[ReportTable]:
        """Every table, report by report: the regions' then the combined (if any)."""
        return [
            t
            for name in self.regional
            for t in (
                *self.regional[name],
                *([self.combined[name]] if name in self.combined else []),
            )
        ]


def build_pack(
    readers: Mapping[Region, ReportsReader],
    month: date,
    *,
    names: tuple[str, ...] | None = None,
    timer: Callable[[], float] | None = None,
    only: Region | None = None,
) -> Pack:
    """Each report of ``month`` in each region (its own reader), and combined. With
    ``only``: that region's reports from its reader, and nothing across the regions (a
    process with a database per region has no other region's figures to combine)."""
    clock = timer or time.perf_counter
    pack = Pack(month, region=only)
    chosen_readers = readers if only is None else {only: readers[only]}
    chosen = names or next(iter(chosen_readers.values())).names
    for name in chosen:
        started = clock()
        tables = regional_tables(chosen_readers, name, month)
        pack.regional[name] = tables
        if only is None:
            pack.combined[name] = combine(tables)
        pack.seconds[name] = clock() - started
    return pack


def regional_tables(
    readers: Mapping[Region, TableSource],
    name: str,
    month: date,
    *,
    concurrently: bool = False,
) -> list[ReportTable]:
    """Report ``name`` of ``month`` as each region's reader makes it, in ``readers``'
    order (what may leave a region: its finished table). Every region is asked — one
    after another, or with ``concurrently`` each in a thread of its own (sources that
    wait on other regions' APIs: the slowest bounds the answer, not their sum);
    :class:`RegionsMissing` names those whose source raised :class:`RegionUnavailable`."""

    def ask(region: Region) -> ReportTable | RegionUnavailable | None:
        try:
            return readers[region].report(name, month, scope=Scope.of_region(region))
        except RegionUnavailable as exc:
            return exc

    regions = list(readers)
    if concurrently and len(regions) > 1:
        with ThreadPoolExecutor(len(regions), thread_name_prefix="reports-region") as pool:
            answers = list(pool.map(ask, regions))
    else:
        answers = [ask(region) for region in regions]
    missing = {a.region: a.reason for a in answers if isinstance(a, RegionUnavailable)}
    if missing:
        raise RegionsMissing(missing)
    return [a for a in answers if isinstance(a, ReportTable)]


def combined_report(
    readers: Mapping[Region, TableSource],
    name: str,
    month: date,
    *,
    concurrently: bool = False,
) -> ReportTable | None:
    """Report ``name`` of ``month`` across the regions of ``readers``: each region's
    table from its own source, :func:`~cloud.reports.tables.combine`-d (region
    ``"all"``); None when no region made one; :class:`RegionsMissing` when a region's
    table could not be had (never a partial total). The pack's combined table and the
    cross-region page's are this one. ``concurrently``: see :func:`regional_tables`."""
    tables = regional_tables(readers, name, month, concurrently=concurrently)
    return combine(tables) if tables else None


def pack_month_due(now: datetime, hour: int, last: date | None) -> date | None:
    """The month whose pack is due at ``now`` (aware): the previous month once it is
    ``hour`` UTC on the 1st or later, unless ``last`` (the month last sent) is it."""
    utc = now.astimezone(UTC)
    previous = (utc.date().replace(day=1) - timedelta(days=1)).replace(day=1)
    if utc.day == 1 and utc.hour < hour:
        return None
    return None if previous == last else previous


async def run_monthly_packs(
    readers: Mapping[Region, ReportsReader],
    send: Callable[[Pack], None],
    stop: asyncio.Event,
    *,
    settings: PackSettings,
    clock: Callable[[], datetime],
    only: Region | None = None,
) -> None:
    """Build and send each month's pack once (module docstring) until ``stop``; with
    ``only``, that region's pack (:func:`build_pack`)."""
    last: date | None = None
    while not stop.is_set():
        month = pack_month_due(clock(), settings.hour, last)
        if month is not None:
            try:
                pack = await asyncio.to_thread(partial(build_pack, readers, month, only=only))
                await asyncio.to_thread(send, pack)
            except Exception:
                log.exception("monthly report pack %s failed; trying at the next check", month)
            else:
                last = month
                log.info("monthly report pack %s sent", month)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.check_s)
