"""Ingest SQL (schema ``ingest``); every function runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from cloud.adapters.postgres import Connection, Jsonb
from cloud.ingest.deadletters import DeadLetterRow
from cloud.regional_ids import next_id_sql
from contracts.messages import BirthMsg, CmdAck, ConfigState, EventMsg, StateMsg
from contracts.streams import StreamProgress, StreamUpdate

_T = TypeVar("_T")
#: Namespace of the per-gateway advisory locks taken to allocate new device keys.
_NEW_DEVICES_LOCK = "potr.ingest.new_devices:"


def insert_dead_letters(conn: Connection[Any], rows: Sequence[DeadLetterRow]) -> None:
    """One row per distinct (topic, payload) — ``digest``, computed by
    :func:`cloud.ingest.deadletters.dead_letter_row` over the whole payload; a repeat
    bumps ``repeats`` and ``last_received_at`` and keeps the latest reason (migration
    003). Rows carry a payload prefix, its original size and SHA-256 (migration 012)."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest.dead_letters (received_at, topic, payload, reason, digest,"
                " payload_size, payload_sha256, last_received_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (digest) DO UPDATE SET"
                " repeats = ingest.dead_letters.repeats + 1,"
                " last_received_at = GREATEST(ingest.dead_letters.last_received_at,"
                " EXCLUDED.last_received_at),"
                " reason = EXCLUDED.reason",
                [(*row, row[0]) for row in rows],
            )


def upsert_session_birth(
    conn: Connection[Any], gateway_id: str, region: str, birth: BirthMsg, received_at: datetime
) -> None:
    conn.execute(
        "INSERT INTO ingest.sessions (gateway_id, region, boot_id, stream_id, agent_version,"
        " poll_interval_s, publish_interval_s, config_version, last_birth, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
        " ON CONFLICT (gateway_id) DO UPDATE SET region = EXCLUDED.region,"
        " boot_id = EXCLUDED.boot_id, stream_id = EXCLUDED.stream_id,"
        " agent_version = EXCLUDED.agent_version, poll_interval_s = EXCLUDED.poll_interval_s,"
        " publish_interval_s = EXCLUDED.publish_interval_s,"
        " config_version = EXCLUDED.config_version, last_birth = EXCLUDED.last_birth,"
        " updated_at = now()",
        (
            gateway_id,
            region,
            birth.boot_id,
            birth.stream_id,
            birth.agent_version,
            birth.poll_interval_s,
            birth.publish_interval_s,
            birth.config_version,
            received_at,
        ),
    )


def upsert_session_state(
    conn: Connection[Any], gateway_id: str, region: str, state: StateMsg
) -> None:
    """Arrival order wins: the LWT carries its connect-time ``ts``, older than 'online'."""
    conn.execute(
        "INSERT INTO ingest.sessions (gateway_id, region, online, boot_id, state_ts, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, now())"
        " ON CONFLICT (gateway_id) DO UPDATE SET online = EXCLUDED.online,"
        " boot_id = EXCLUDED.boot_id, state_ts = EXCLUDED.state_ts, updated_at = now()",
        (gateway_id, region, state.online, state.boot_id, state.ts),
    )


def find_device_keys(
    conn: Connection[Any], pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    if not pairs:
        return {}
    gws, locals_ = zip(*pairs, strict=True)
    rows = conn.execute(
        "SELECT k.gateway_id, k.local_id, k.device_id FROM ingest.device_keys k"
        " JOIN unnest(%s::text[], %s::text[]) AS p(gateway_id, local_id)"
        " USING (gateway_id, local_id)",
        (list(gws), list(locals_)),
    ).fetchall()
    return {(gw, local): int(dev) for gw, local, dev in rows}


def allocate_device_keys(
    conn: Connection[Any], pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Keys for (gateway, local id) pairs, allocated in the caller's transaction where
    new; return only the new ones.

    A pair another transaction is allocating makes this wait for it; once that one
    commits the pair is skipped (the caller looks it up), so two workers never give one
    device two keys. Rows go in sorted, so two batches never wait on each other in a
    cycle.
    """
    if not pairs:
        return {}
    gws, locals_ = zip(*sorted(pairs), strict=True)
    rows = conn.execute(
        "INSERT INTO ingest.device_keys (gateway_id, local_id, device_id)"
        f" SELECT p.gateway_id, p.local_id, {next_id_sql('ingest.device_key_seq', 'g.region')}"
        " FROM unnest(%s::text[], %s::text[]) AS p(gateway_id, local_id)"
        " LEFT JOIN ingest.gateways g USING (gateway_id)"
        " ORDER BY p.gateway_id, p.local_id"
        " ON CONFLICT DO NOTHING RETURNING gateway_id, local_id, device_id",
        (list(gws), list(locals_)),
    ).fetchall()
    return {(gw, local): int(dev) for gw, local, dev in rows}


def lock_new_devices(conn: Connection[Any], gateway_ids: Collection[str]) -> None:
    """Hold, until commit, the right to add devices to these gateways (sorted, so two
    batches never wait on each other in a cycle): the day's count read next stays true
    until the keys are allocated, so concurrent workers cannot exceed a gateway's cap."""
    for gw in sorted(gateway_ids):
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_NEW_DEVICES_LOCK + gw,)
        )


def devices_added_since(
    conn: Connection[Any], gateway_ids: Collection[str], since: datetime
) -> dict[str, int]:
    """Device keys each gateway got at or after ``since`` (gateways with none left out)."""
    rows = conn.execute(
        "SELECT gateway_id, count(*) FROM ingest.device_keys"
        " WHERE gateway_id = ANY(%s) AND created_at >= %s GROUP BY gateway_id",
        (list(gateway_ids), since),
    ).fetchall()
    return {str(gw): int(n) for gw, n in rows}


def insert_events(
    conn: Connection[Any], rows: Iterable[tuple[str, EventMsg]]
) -> list[tuple[str, EventMsg]]:
    """Insert gateway events; return those that were new (not repeats)."""
    return _insert_new(
        conn,
        "INSERT INTO ingest.events (stream_id, seq, gateway_id, ts, event, severity,"
        " device, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        [
            (
                (gw, e),
                (e.stream_id, e.seq, gw, e.ts, e.event, e.severity, e.device, Jsonb(e.detail)),
            )
            for gw, e in rows
        ],
    )


def insert_cmd_acks(
    conn: Connection[Any], rows: Iterable[tuple[str, CmdAck]]
) -> list[tuple[str, CmdAck]]:
    """Insert command acks; return those that were new."""
    return _insert_new(
        conn,
        "INSERT INTO ingest.cmd_acks (stream_id, seq, gateway_id, command_id, status,"
        " detail, ts) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        [
            ((gw, a), (a.stream_id, a.seq, gw, a.id, a.status.value, a.detail, a.ts))
            for gw, a in rows
        ],
    )


def insert_config_states(
    conn: Connection[Any], rows: Iterable[tuple[str, ConfigState]]
) -> list[tuple[str, ConfigState]]:
    """Insert reported config states; return those that were new."""
    return _insert_new(
        conn,
        "INSERT INTO ingest.config_states (stream_id, seq, gateway_id, version, hash,"
        " status, devices, points, drift, detail, ts)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        [
            (
                (gw, c),
                (
                    c.stream_id,
                    c.seq,
                    gw,
                    c.version,
                    c.hash,
                    c.status,
                    Jsonb(c.devices),
                    Jsonb(c.points),
                    Jsonb(c.drift),
                    c.detail,
                    c.ts,
                ),
            )
            for gw, c in rows
        ],
    )


def _insert_new(
    conn: Connection[Any], query: str, items: list[tuple[_T, tuple[Any, ...]]]
) -> list[_T]:
    # These kinds are rare (alarms, acks, configs): one round trip each is fine, and
    # RETURNING tells which were new, so a redelivery emits nothing twice.
    new: list[_T] = []
    for item, params in items:
        if conn.execute(query, params).fetchone() is not None:
            new.append(item)
    return new


def upsert_last_seen(
    conn: Connection[Any], rows: dict[int, tuple[str, datetime]], received_at: datetime
) -> None:
    """One row per device: the newest reading time seen (never moves backwards)."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest.device_last_seen (device_id, gateway_id, last_ts,"
                " received_at) VALUES (%s, %s, %s, %s) ON CONFLICT (device_id) DO UPDATE SET"
                " gateway_id = EXCLUDED.gateway_id,"
                " last_ts = GREATEST(ingest.device_last_seen.last_ts, EXCLUDED.last_ts),"
                " received_at = EXCLUDED.received_at",
                [(dev, gw, ts, received_at) for dev, (gw, ts) in sorted(rows.items())],
            )


class StreamOwnerError(RuntimeError):
    """A stream to advance belongs to another gateway (created concurrently)."""


def stream_gateways(conn: Connection[Any], stream_ids: Collection[UUID]) -> dict[UUID, str]:
    """The gateway each known stream belongs to (unknown streams are left out)."""
    rows = conn.execute(
        "SELECT stream_id, gateway_id FROM ingest.streams WHERE stream_id = ANY(%s)",
        (list(stream_ids),),
    ).fetchall()
    return {s: str(gw) for s, gw in rows}


def lock_streams(conn: Connection[Any], owners: dict[UUID, str]) -> dict[UUID, StreamProgress]:
    """Create unseen streams, lock all of them (in id order) and load their progress.

    Raise :class:`StreamOwnerError` when a stream belongs to another gateway than
    ``owners`` says: nothing may advance another gateway's stream.
    """
    if not owners:
        return {}
    ordered = sorted(owners)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ingest.streams (stream_id, gateway_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            [(s, owners[s]) for s in ordered],
        )
    highs: dict[UUID, int] = {}
    for stream_id, gateway_id, high in conn.execute(
        "SELECT stream_id, gateway_id, high_seq FROM ingest.streams WHERE stream_id = ANY(%s)"
        " ORDER BY stream_id FOR UPDATE",
        (ordered,),
    ).fetchall():
        if gateway_id != owners[stream_id]:
            raise StreamOwnerError(
                f"stream {stream_id} belongs to gateway {gateway_id!r}, not {owners[stream_id]!r}"
            )
        highs[stream_id] = int(high)
    gaps: dict[UUID, list[tuple[int, int]]] = {s: [] for s in ordered}
    for stream_id, lo, hi in conn.execute(
        "SELECT stream_id, from_seq, to_seq FROM ingest.gaps"
        " WHERE stream_id = ANY(%s) AND closed_at IS NULL ORDER BY from_seq",
        (ordered,),
    ).fetchall():
        gaps[stream_id].append((int(lo), int(hi)))
    return {s: StreamProgress(highs[s], tuple(gaps[s])) for s in ordered}


def save_stream(conn: Connection[Any], stream_id: UUID, update: StreamUpdate) -> None:
    """Write one :class:`StreamUpdate`: one statement per stored gap touched.

    Pieces split off a gap are inserted first, copying ``opened_at`` from the gap's row
    while it still has its old bounds; then gaps shrink in place, empty ones close, and
    holes new in this batch are inserted.
    """
    progress = update.progress
    conn.execute(
        "UPDATE ingest.streams SET high_seq = %s, watermark = %s, updated_at = now()"
        " WHERE stream_id = %s",
        (progress.high_seq, progress.watermark, stream_id),
    )
    with conn.cursor() as cur:
        if update.split_off:
            cur.executemany(
                "INSERT INTO ingest.gaps (stream_id, from_seq, to_seq, opened_at)"
                " SELECT stream_id, %s, %s, opened_at FROM ingest.gaps WHERE stream_id = %s"
                " AND from_seq = %s AND to_seq = %s AND closed_at IS NULL",
                [(lo, hi, stream_id, old[0], old[1]) for old, (lo, hi) in update.split_off],
            )
        if update.shrunk:
            cur.executemany(
                "UPDATE ingest.gaps SET from_seq = %s, to_seq = %s WHERE stream_id = %s"
                " AND from_seq = %s AND to_seq = %s AND closed_at IS NULL",
                [(new[0], new[1], stream_id, old[0], old[1]) for old, new in update.shrunk],
            )
        if update.closed:
            cur.executemany(
                "UPDATE ingest.gaps SET closed_at = now() WHERE stream_id = %s"
                " AND from_seq = %s AND to_seq = %s AND closed_at IS NULL",
                [(stream_id, lo, hi) for lo, hi in update.closed],
            )
        if update.opened:
            cur.executemany(
                "INSERT INTO ingest.gaps (stream_id, from_seq, to_seq) VALUES (%s, %s, %s)",
                [(stream_id, lo, hi) for lo, hi in update.opened],
            )


def stream_watermarks(conn: Connection[Any], stream_ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = conn.execute(
        "SELECT stream_id, watermark FROM ingest.streams WHERE stream_id = ANY(%s)",
        (list(stream_ids),),
    ).fetchall()
    return {s: int(w) for s, w in rows}


def touch_sessions(conn: Connection[Any], rows: Sequence[tuple[str, str, datetime]]) -> None:
    """``last_message_at`` per (gateway, region, newest receipt) of one batch."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest.sessions (gateway_id, region, last_message_at)"
                " VALUES (%s, %s, %s) ON CONFLICT (gateway_id) DO UPDATE SET"
                " last_message_at = GREATEST(ingest.sessions.last_message_at,"
                " EXCLUDED.last_message_at)",
                sorted(rows),
            )


def gateway_records(
    conn: Connection[Any], gateway_ids: Collection[str]
) -> dict[str, tuple[str, bool]]:
    """(region, enabled) of each of these gateways ingest knows (from the registry's
    events)."""
    rows = conn.execute(
        "SELECT gateway_id, region, enabled FROM ingest.gateways WHERE gateway_id = ANY(%s)",
        (list(gateway_ids),),
    ).fetchall()
    return {str(g): (str(r), bool(e)) for g, r, e in rows}


def upsert_gateway(
    conn: Connection[Any],
    gateway_id: str,
    region: str,
    time_zone: str,
    at: datetime,
    enabled: bool = True,
    site_id: int | None = None,
) -> bool:
    """Record a registration as of ``at``; an older one never overwrites a newer one.
    True when the row changed."""
    row = conn.execute(
        "INSERT INTO ingest.gateways (gateway_id, region, time_zone, enabled, updated_at,"
        " site_id) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (gateway_id) DO UPDATE SET"
        " region = EXCLUDED.region, time_zone = EXCLUDED.time_zone,"
        " enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at,"
        " site_id = COALESCE(EXCLUDED.site_id, ingest.gateways.site_id)"
        " WHERE ingest.gateways.updated_at <= EXCLUDED.updated_at RETURNING 1",
        (gateway_id, region, time_zone, enabled, at, site_id),
    ).fetchone()
    return row is not None


def upsert_device_reports(
    conn: Connection[Any], rows: Sequence[tuple[str, str, str, datetime]]
) -> None:
    """(gateway, local id, status, reported at): the newest report per device wins."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest.device_reports (gateway_id, local_id, status, reported_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (gateway_id, local_id) DO UPDATE SET"
                " status = EXCLUDED.status, reported_at = EXCLUDED.reported_at"
                " WHERE EXCLUDED.reported_at >= ingest.device_reports.reported_at",
                sorted(rows),
            )
