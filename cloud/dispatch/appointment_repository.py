"""Dispatch SQL of appointments (``schema/004_appointments.sql``): offers and their
windows, the confirmed appointment, reschedules and reminders sent. Every function takes
a connection in a transaction; column names are written here, never taken from a caller.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud.adapters.postgres import Connection, dict_row
from cloud.dispatch.appointments import Appointment, Offer, Window

__all__ = [
    "StoredAppointment",
    "StoredOffer",
    "appointment",
    "clear_appointment",
    "due_reminders",
    "insert_change",
    "insert_offer",
    "jobs_without_offer",
    "latest_offer",
    "mark_reminder",
    "sent_leads",
    "set_appointment",
    "set_remind_at",
]

StoredOffer = tuple[int, str, Offer]  # id, site zone, the offer
StoredAppointment = tuple[Appointment, str, str]  # the appointment, by, role


def insert_offer(conn: Connection[Any], offer: Offer, zone: str, reason: str) -> int:
    row = conn.execute(
        "INSERT INTO dispatch.appointment_offers (work_order_id, site_zone, offered_at,"
        " expires_at, reason) VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (int(offer.job_id), zone, offer.offered_at, offer.expires_at, reason),
    ).fetchone()
    assert row is not None
    offer_id = int(row[0])
    for w in offer.windows:
        conn.execute(
            "INSERT INTO dispatch.appointment_windows (offer_id, starts, ends, label, past_sla,"
            " confirm_by, technicians) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (offer_id, w.starts, w.ends, w.label, w.past_sla, w.confirm_by, list(w.technicians)),
        )
    return offer_id


def latest_offer(conn: Connection[Any], work_order_id: int) -> StoredOffer | None:
    """The work order's newest offer (the live one, expired or not)."""
    head = conn.execute(
        "SELECT id, site_zone, offered_at, expires_at FROM dispatch.appointment_offers"
        " WHERE work_order_id = %s ORDER BY id DESC LIMIT 1",
        (work_order_id,),
    ).fetchone()
    if head is None:
        return None
    offer_id, zone, offered_at, expires_at = head
    tz = ZoneInfo(zone)
    rows = conn.cursor(row_factory=dict_row).execute(
        "SELECT starts, ends, label, past_sla, confirm_by, technicians"
        " FROM dispatch.appointment_windows WHERE offer_id = %s ORDER BY starts",
        (offer_id,),
    )
    windows = tuple(
        Window(
            starts=r["starts"].astimezone(tz),
            ends=r["ends"].astimezone(tz),
            label=r["label"],
            past_sla=r["past_sla"],
            confirm_by=r["confirm_by"].astimezone(tz),
            technicians=tuple(r["technicians"]),
        )
        for r in rows.fetchall()
    )
    offer = Offer(
        job_id=str(work_order_id), offered_at=offered_at, expires_at=expires_at, windows=windows
    )
    return int(offer_id), zone, offer


def set_appointment(
    conn: Connection[Any],
    offer_id: int,
    zone: str,
    appointment: Appointment,
    booked_until: datetime,
    by: str,
    role: str,
    remind_at: datetime | None,
) -> None:
    w = appointment.window
    conn.execute(
        "INSERT INTO dispatch.appointments (work_order_id, offer_id, starts, ends, booked_until,"
        " label, site_zone, confirmed_at, confirmed_by, confirmed_role, remind_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (work_order_id)"
        " DO UPDATE SET offer_id = EXCLUDED.offer_id, starts = EXCLUDED.starts,"
        " ends = EXCLUDED.ends, booked_until = EXCLUDED.booked_until, label = EXCLUDED.label,"
        " site_zone = EXCLUDED.site_zone, confirmed_at = EXCLUDED.confirmed_at,"
        " confirmed_by = EXCLUDED.confirmed_by, confirmed_role = EXCLUDED.confirmed_role,"
        " remind_at = EXCLUDED.remind_at",
        (
            int(appointment.job_id),
            offer_id,
            w.starts,
            w.ends,
            booked_until,
            w.label,
            zone,
            appointment.confirmed_at,
            by,
            role,
            remind_at,
        ),
    )


def appointment(conn: Connection[Any], work_order_id: int) -> StoredAppointment | None:
    r = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT starts, ends, label, site_zone, confirmed_at, confirmed_by, confirmed_role"
            " FROM dispatch.appointments WHERE work_order_id = %s",
            (work_order_id,),
        )
        .fetchone()
    )
    if r is None:
        return None
    tz = ZoneInfo(r["site_zone"])
    window = Window(
        starts=r["starts"].astimezone(tz),
        ends=r["ends"].astimezone(tz),
        label=r["label"],
        confirm_by=r["starts"].astimezone(tz),
    )
    found = Appointment(job_id=str(work_order_id), window=window, confirmed_at=r["confirmed_at"])
    return found, r["confirmed_by"], r["confirmed_role"]


def clear_appointment(conn: Connection[Any], work_order_id: int) -> None:
    conn.execute("DELETE FROM dispatch.appointments WHERE work_order_id = %s", (work_order_id,))


def insert_change(
    conn: Connection[Any],
    work_order_id: int,
    old: Window | None,
    new_offer_id: int,
    by: str,
    role: str,
    at: datetime,
    reason: str | None,
) -> None:
    conn.execute(
        "INSERT INTO dispatch.appointment_changes (work_order_id, old_starts, old_ends,"
        " new_offer_id, by_actor, role, at, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            work_order_id,
            None if old is None else old.starts,
            None if old is None else old.ends,
            new_offer_id,
            by,
            role,
            at,
            reason,
        ),
    )


def jobs_without_offer(
    conn: Connection[Any], statuses: Collection[str], now: datetime
) -> list[int]:
    """Work orders in ``statuses`` with neither a confirmed appointment nor an offer
    still open at ``now``."""
    rows = conn.execute(
        "SELECT w.id FROM dispatch.work_orders w WHERE w.status = ANY(%s)"
        " AND NOT EXISTS (SELECT 1 FROM dispatch.appointments a WHERE a.work_order_id = w.id)"
        " AND NOT EXISTS (SELECT 1 FROM dispatch.appointment_offers o"
        "   WHERE o.work_order_id = w.id AND o.expires_at > %s) ORDER BY w.id",
        (sorted(statuses), now),
    ).fetchall()
    return [int(r[0]) for r in rows]


def due_reminders(conn: Connection[Any], now: datetime) -> list[int]:
    rows = conn.execute(
        "SELECT work_order_id FROM dispatch.appointments WHERE remind_at <= %s"
        " ORDER BY remind_at, work_order_id",
        (now,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def sent_leads(conn: Connection[Any], work_order_id: int, starts: datetime) -> list[timedelta]:
    rows = conn.execute(
        "SELECT lead FROM dispatch.appointment_reminders WHERE work_order_id = %s AND starts = %s",
        (work_order_id, starts),
    ).fetchall()
    return [r[0] for r in rows]


def mark_reminder(
    conn: Connection[Any], work_order_id: int, starts: datetime, lead: timedelta, at: datetime
) -> bool:
    """Record the reminder as sent; False when it was sent before."""
    row = conn.execute(
        "INSERT INTO dispatch.appointment_reminders (work_order_id, starts, lead, sent_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (work_order_id, starts, lead, at),
    ).fetchone()
    return row is not None


def set_remind_at(conn: Connection[Any], work_order_id: int, at: datetime | None) -> None:
    conn.execute(
        "UPDATE dispatch.appointments SET remind_at = %s WHERE work_order_id = %s",
        (at, work_order_id),
    )
