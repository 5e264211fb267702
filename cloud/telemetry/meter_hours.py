"""A meter's register deltas per hour, for billing (ARCHITECTURE decision 119): the
telemetry store's published reader of ``telemetry.energy_15m`` for one device of a
site, named by its serial, and one Wh counter (``import_wh``, ``export_wh``, … ids of
:mod:`contracts.metrics`). The table is the same on both backends, so is this reader.

Hours
    Consecutive hours ``[start + k h, start + (k + 1) h)`` over the asked range, whose
    ends lie on 15-minute buckets: whole UTC hours are local hours in every zone with a
    whole-hour offset, and starting at ``:30`` (Adelaide, Darwin) or ``:15`` (Eucla)
    gives those zones' local hours. An hour's energy is the sum of its four buckets, that is of
    the sample pairs whose later sample lies in ``(start, end]``
    (:mod:`cloud.telemetry.energy`: nothing is interpolated). A zone whose offset moves
    by half an hour (Lord Howe) changes its hours' alignment at the shift: ask for the
    range on either side of it separately.

No data (``energy_mwh`` None)
    A bucket *measured* something when a sample pair spanned part of it (``covered``),
    it received energy, or it holds a sample and is flagged ``gap`` (it received a gap
    pair's energy, zero at night). Buckets that a gap pair only passes over (flagged
    ``gap``, no sample, no energy: "no data; the energy is reported later"), the bucket
    holding a counter's very first sample (nothing before it) and missing buckets
    measured nothing. An hour none of whose buckets measured anything is None: no data
    *yet*, which late samples (a gateway's buffer) may still fill; its ``flags`` say
    ``gap`` when a gap pair passes over it, so billing can tell an outage the meter
    came back from (its energy landed in a later hour) from an hour nothing reached.

Flags and coverage
    Every hour carries the union of its buckets' flags and the time of it spanned by
    non-gap sample pairs. An hour with energy and ``gap`` either received a gap pair's
    energy (which includes energy of the hours the gap passed over) or lost the rest of
    its energy to a later hour; with ``covered`` shorter than the hour and no ``gap``,
    its data stops (or starts) inside it — the meter's latest hour. ``complete`` is an
    hour wholly spanned by non-gap pairs: its figure is exactly its own energy.

A serial no device of the site answers to raises :class:`MeterNotFoundError` rather
than answering hours of no data: billing must not estimate a period for a meter that
never reported, nor for the wrong one (the device rules:
:mod:`cloud.telemetry.site_meters`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.telemetry.energy_models import BUCKET, BaseBucket, EnergyFlag
from cloud.telemetry.energy_store import ENERGY_METRICS
from cloud.telemetry.site_meters import DeviceMatch, device_by_serial, site_devices
from contracts.topics import Region

__all__ = [
    "HOUR",
    "MAX_HOURS",
    "MeterHourFigure",
    "MeterHourReader",
    "MeterHours",
    "MeterNotFoundError",
    "RegisterReading",
    "hour_count",
    "hour_figures",
    "read_meter_hours",
    "read_register_around",
]

HOUR = timedelta(hours=1)
#: Hours one read may span: a billing period is a month, a re-reckoning a year at most.
MAX_HOURS = 24 * 370
_NONE = timedelta(0)


class MeterNotFoundError(LookupError):
    """No device of the site is the meter: none keyed by its serial nor one keyed by
    position with the register (``reason`` NONE), or several of those (AMBIGUOUS)."""

    def __init__(self, site_id: int, region: Region, serial: str, reason: DeviceMatch) -> None:
        super().__init__(
            f"site {site_id} ({region.value}) has no device for meter {serial!r} ({reason.value})"
        )
        self.site_id = site_id
        self.region = region
        self.serial = serial
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MeterHourFigure:
    """One hour ``[start, end)`` (UTC) of a meter's register: integer milliwatt-hours, or
    None when no data reached it yet (module docstring)."""

    start: datetime
    end: datetime
    energy_mwh: int | None
    flags: frozenset[EnergyFlag]
    #: Time of the hour spanned by sample pairs shorter than the gap threshold.
    covered: timedelta
    device_id: int

    @property
    def complete(self) -> bool:
        """Every moment of the hour lay in a non-gap sample pair: the figure is exactly
        this hour's energy."""
        return (
            self.energy_mwh is not None
            and self.covered == self.end - self.start
            and EnergyFlag.GAP not in self.flags
        )


@dataclass(frozen=True, slots=True)
class MeterHours:
    """A meter's hours over a range, and which device answered for its serial."""

    site_id: int
    region: Region
    serial: str
    metric_id: int
    device_id: int
    #: SERIAL (keyed by it) or POSITION (the site's one position-keyed meter).
    match: DeviceMatch
    hours: tuple[MeterHourFigure, ...]


@dataclass(frozen=True, slots=True)
class RegisterReading:
    """One stored reading of a meter's counter: its time and value (Wh)."""

    ts: datetime
    wh: float


def hour_count(start: datetime, end: datetime) -> int:
    """How many hours ``[start, end)`` holds; ValueError unless both are aware, on a
    15-minute bucket boundary, ``end`` after ``start`` by whole hours, at most
    :data:`MAX_HOURS`."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    for name, t in (("start", start), ("end", end)):
        if (t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) % BUCKET:
            raise ValueError(f"{name} {t.isoformat()} is not on a 15-minute boundary")
    span = end - start
    if span <= _NONE or span % HOUR:
        raise ValueError(f"[{start.isoformat()}, {end.isoformat()}) is not whole hours")
    hours = span // HOUR
    if hours > MAX_HOURS:
        raise ValueError(f"{hours} hours asked, at most {MAX_HOURS} a read")
    return hours


def _measured(b: BaseBucket) -> bool:
    """Whether the bucket holds a figure, zero included (module docstring). The same rule
    is :data:`_HOURS_SQL`'s ``bool_or``."""
    return b.covered > _NONE or b.energy_mwh != 0 or (EnergyFlag.GAP in b.flags and b.samples > 0)


@dataclass(frozen=True, slots=True)
class _HourSum:
    """An hour's buckets summed: energy, whether any measured something, covered time,
    the union of their flags."""

    energy_mwh: int
    measured: bool
    covered: timedelta
    flags: frozenset[EnergyFlag]


_NO_BUCKETS = _HourSum(0, False, _NONE, frozenset())


def _figures(
    sums: dict[int, _HourSum], start: datetime, n: int, device_id: int
) -> list[MeterHourFigure]:
    figures = []
    for k in range(n):
        h = start + k * HOUR
        got = sums.get(k, _NO_BUCKETS)
        figures.append(
            MeterHourFigure(
                start=h,
                end=h + HOUR,
                energy_mwh=got.energy_mwh if got.measured else None,
                flags=got.flags,
                covered=got.covered,
                device_id=device_id,
            )
        )
    return figures


def hour_figures(
    buckets: Iterable[BaseBucket], start: datetime, end: datetime, device_id: int
) -> list[MeterHourFigure]:
    """The hours of ``[start, end)`` summed from one counter's ``buckets`` (those outside
    are ignored). :func:`read_meter_hours` sums the stored buckets the same way in SQL."""
    n = hour_count(start, end)
    start = start.astimezone(UTC)
    per_hour: dict[int, list[BaseBucket]] = {}
    for b in buckets:
        k = (b.start - start) // HOUR
        if 0 <= k < n:
            per_hour.setdefault(k, []).append(b)
    sums = {
        k: _HourSum(
            energy_mwh=sum(b.energy_mwh for b in got),
            measured=any(_measured(b) for b in got),
            covered=sum((b.covered for b in got), _NONE),
            flags=frozenset(f for b in got for f in b.flags),
        )
        for k, got in per_hour.items()
    }
    return _figures(sums, start, n, device_id)


#: One counter's stored buckets of ``[start, end)`` summed per hour from ``start`` by the
#: server (a month is some 3,000 buckets a register; as Python objects they were most of
#: a billing cycle's time): the hour's index, energy, whether a bucket measured
#: something (:func:`_measured`'s rule), covered time and the flags, comma-joined (NULL
#: for none).
_HOURS_SQL = (
    "SELECT floor(date_part('epoch', bucket - %(start)s) / 3600)::int AS k,"
    " sum(energy_mwh)::bigint,"
    " bool_or(covered > interval '0' OR energy_mwh <> 0"
    " OR (%(gap)s = ANY(flags) AND samples > 0)),"
    " sum(covered), string_agg(NULLIF(array_to_string(flags, ','), ''), ',')"
    " FROM telemetry.energy_15m WHERE device_id = %(device)s AND metric_id = %(metric)s"
    " AND bucket >= %(start)s AND bucket < %(end)s GROUP BY 1"
)


def _hour_sums(
    conn: Connection[Any], device: int, metric: int, start: datetime, end: datetime
) -> dict[int, _HourSum]:
    rows = conn.execute(
        _HOURS_SQL,
        {
            "start": start,
            "end": end,
            "device": device,
            "metric": metric,
            "gap": EnergyFlag.GAP.value,
        },
    ).fetchall()
    return {
        k: _HourSum(
            energy_mwh=int(mwh),
            measured=bool(measured),
            covered=covered,
            flags=frozenset(EnergyFlag(f) for f in flags.split(",")) if flags else frozenset(),
        )
        for k, mwh, measured, covered, flags in rows
    }


def read_meter_hours(
    conn: Connection[Any],
    site_id: int,
    region: Region,
    serial: str,
    metric: int,
    start: datetime,
    end: datetime,
) -> MeterHours:
    """The hours of ``[start, end)`` of meter ``serial``'s counter ``metric`` at site
    ``site_id`` of ``region``. ValueError for a metric that is no Wh counter or a range
    that is no whole hours (:func:`hour_count`); :class:`MeterNotFoundError` when no
    device of the site is the meter."""
    if metric not in ENERGY_METRICS:
        raise ValueError(f"metric {metric} is not a Wh counter")
    n = hour_count(start, end)
    found = device_by_serial(site_devices(conn, site_id, region, metric), serial)
    if found.device_id is None:
        raise MeterNotFoundError(site_id, region, serial, found.match)
    device = found.device_id
    start = start.astimezone(UTC)
    sums = _hour_sums(conn, device, metric, start, end)
    return MeterHours(
        site_id=site_id,
        region=region,
        serial=serial,
        metric_id=metric,
        device_id=device,
        match=found.match,
        hours=tuple(_figures(sums, start, n, device)),
    )


def read_register_around(
    conn: Connection[Any],
    site_id: int,
    region: Region,
    serial: str,
    metric: int,
    at: datetime,
) -> tuple[RegisterReading | None, RegisterReading | None]:
    """Meter ``serial``'s last stored reading of counter ``metric`` at or before ``at``
    and its first at or after it (None where there is none): what a meter swap's
    recorded registers are set against, the energy no hour of either meter holds (the
    old meter's after its last reading, the new one's before its first).
    :class:`MeterNotFoundError` when no device of the site is the meter."""
    if metric not in ENERGY_METRICS:
        raise ValueError(f"metric {metric} is not a Wh counter")
    found = device_by_serial(site_devices(conn, site_id, region, metric), serial)
    if found.device_id is None:
        raise MeterNotFoundError(site_id, region, serial, found.match)
    edges = []
    for op, order in (("<=", "DESC"), (">=", "ASC")):
        row = conn.execute(
            "SELECT ts, value FROM telemetry.readings WHERE device_id = %s AND metric_id = %s"
            f" AND ts {op} %s ORDER BY ts {order} LIMIT 1",
            (found.device_id, metric, at),
        ).fetchone()
        edges.append(None if row is None else RegisterReading(row[0], float(row[1])))
    return edges[0], edges[1]


class MeterHourReader:
    """:func:`read_meter_hours` and :func:`read_register_around` on a connection of
    ``pool`` (blocking: from async code, run it in a thread)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def hours(
        self,
        site_id: int,
        region: Region,
        serial: str,
        metric: int,
        start: datetime,
        end: datetime,
    ) -> MeterHours:
        with self._pool.connection() as conn:
            return read_meter_hours(conn, site_id, region, serial, metric, start, end)

    def around(
        self, site_id: int, region: Region, serial: str, metric: int, at: datetime
    ) -> tuple[RegisterReading | None, RegisterReading | None]:
        with self._pool.connection() as conn:
            return read_register_around(conn, site_id, region, serial, metric, at)
