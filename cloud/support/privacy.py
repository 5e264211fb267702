"""Privacy requests (issue 20 point 6): a customer's data export or erasure, raised as a
ticket of kind ``data_export``/``data_erasure`` and carried out when staff approve it.

Support asks, the owners act: every service that holds personal data answers through a
:class:`~cloud.personal_data.PersonalDataHolder` over its own schema, given to the desk
by the composition root; support itself is one of them (its tickets). An export is one
zip archive (a JSON file per service and a manifest), bounded in size, kept for the
account to download until it expires, with the files a holder keeps (photos) beside
the JSON (:class:`~cloud.personal_data.PersonalFiles`). An erasure asks every holder to
erase, keeps the counts per service (never the data) as the ticket's erasure record, and deletes any
export archive of the account. The deadline the law gives is data (``data/privacy.yaml``).
"""

from __future__ import annotations

import calendar
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from cloud.adapters.postgres import Connection, ConnectionPool, Jsonb, dict_row
from cloud.personal_data import Erasure, Export, PersonalDataHolder, PersonalFiles
from cloud.scope import Scope
from cloud.support import repository as repo
from cloud.support.errors import ConflictError, NotFoundError
from cloud.support.lifecycle import Kind, State
from cloud.support.models import Ticket
from contracts.topics import Region

__all__ = [
    "ERASED_TEXT",
    "ErasureRecord",
    "ExportReady",
    "LegalTerm",
    "PrivacyDesk",
    "SupportPersonalData",
    "legal_due",
    "load_terms",
]

TERMS_FILE = Path(__file__).parent / "data" / "privacy.yaml"
#: What an erased ticket's subject becomes.
ERASED_TEXT = "erased"
PRIVACY_KINDS = frozenset({Kind.DATA_EXPORT, Kind.DATA_ERASURE})
Pool = ConnectionPool[Connection[Any]]


class LegalTerm(BaseModel):
    """How long the law gives: days or calendar months, and how far it may be extended."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int | None = Field(default=None, ge=1, le=366)
    months: int | None = Field(default=None, ge=1, le=12)
    extension_days: int = Field(default=0, ge=0, le=366)
    extension_months: int = Field(default=0, ge=0, le=12)


Terms = dict[Region, dict[Kind, LegalTerm]]


def load_terms(path: Path = TERMS_FILE) -> Terms:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        Region(r): {Kind(k): LegalTerm.model_validate(t) for k, t in kinds.items()}
        for r, kinds in raw.items()
    }


def _add_months(day: date, months: int) -> date:
    # One month from 31 January is the last day of February (the period's corresponding
    # day, or the month's last when it has none).
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def legal_due(term: LegalTerm, received: date, *, extended: bool = False) -> date:
    """The last day to answer a request received on ``received`` (``extended``: with
    the extension the law allows when the customer was told of it in time)."""
    due = _add_months(received, term.months) if term.months else received
    due += timedelta(days=term.days or 0)
    if extended:
        due = _add_months(due, term.extension_months) + timedelta(days=term.extension_days)
    return due


@dataclass(frozen=True)
class ExportReady:
    ticket_id: int
    size: int
    expires_at: datetime


class ErasureRecord(BaseModel):
    """What an erasure did, per service: counts only (the account id is opaque)."""

    model_config = ConfigDict(frozen=True)

    ticket_id: int
    region: Region
    account_id: str
    erased_at: datetime
    erased_by: str
    counts: dict[str, dict[str, dict[str, int]]]


class SupportPersonalData:
    """Support's own holder: the account's tickets, their links and the history lines
    the customer saw. Erasure blanks their texts (subject, description, outcome,
    reasons, notes) and deletes export archives; the tickets stay as bare rows (kind,
    state, times) — the record of complaints handled that regulators may ask for."""

    service = "support"

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def export(self, region: Region, account_id: str) -> Export:
        where = "region = %s AND account_id = %s"
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            tickets = cur.execute(
                "SELECT id, kind, change, priority, state, subject, description, plan_code,"
                " plan_from, outcome, reasons, created_at, resolved_at, closed_at"
                f" FROM support.tickets WHERE {where} ORDER BY id",
                (region.value, account_id),
            ).fetchall()
            ids = [t["id"] for t in tickets]
            history = cur.execute(
                "SELECT ticket_id, at, action, from_state, to_state, note"
                " FROM support.ticket_events WHERE ticket_id = ANY(%s) AND visible_to_customer"
                " ORDER BY id",
                (ids,),
            ).fetchall()
            links = cur.execute(
                "SELECT ticket_id, kind, ref FROM support.ticket_links"
                " WHERE ticket_id = ANY(%s) ORDER BY ticket_id, kind, ref",
                (ids,),
            ).fetchall()
        return {"tickets": tickets, "ticket_history": history, "ticket_links": links}

    def erase(self, region: Region, account_id: str) -> Erasure:
        with self._pool.connection() as conn, conn.transaction():
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM support.tickets WHERE region = %s AND account_id = %s"
                    " ORDER BY id FOR UPDATE",
                    (region.value, account_id),
                )
            ]
            texts = conn.execute(
                "UPDATE support.tickets SET subject = %s, description = '',"
                " outcome = CASE WHEN outcome IS NULL THEN NULL ELSE '' END,"
                " reasons = CASE WHEN reasons IS NULL THEN NULL ELSE '' END"
                " WHERE id = ANY(%s) AND subject <> %s",
                (ERASED_TEXT, ids, ERASED_TEXT),
            ).rowcount
            notes = conn.execute(
                "UPDATE support.ticket_events SET note = '' WHERE ticket_id = ANY(%s)"
                " AND note <> ''",
                (ids,),
            ).rowcount
            archives = conn.execute(
                "DELETE FROM support.privacy_exports WHERE region = %s AND account_id = %s",
                (region.value, account_id),
            ).rowcount
        return Erasure(
            self.service,
            erased={"ticket_texts": texts, "ticket_notes": notes, "export_archives": archives},
            kept={"tickets": len(ids)},
        )


class PrivacyDesk:
    """Carries out approved privacy requests over the given holders (support's own
    among them, first or not: order does not matter, each erases only its own)."""

    def __init__(
        self,
        pool: Pool,
        holders: Sequence[PersonalDataHolder],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        terms: Terms | None = None,
        export_ttl: timedelta = timedelta(days=7),
        max_archive_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._pool = pool
        self._holders = list(holders)
        self._clock = clock
        self._terms = terms if terms is not None else load_terms()
        self._ttl = export_ttl
        self._max = max_archive_bytes

    @property
    def holders(self) -> Sequence[PersonalDataHolder]:
        return tuple(self._holders)

    def due(self, ticket: Ticket) -> date:
        """The legal deadline of a privacy ticket, from the day it was received."""
        return legal_due(self._terms[ticket.region][ticket.kind], ticket.created_at.date())

    # -- export -------------------------------------------------------------------------
    def export(self, ticket_id: int, scope: Scope, actor: str) -> ExportReady:
        """Staff approve an export request: every holder's share into one archive the
        account downloads from the ticket until it expires (once per ticket)."""
        ticket = self._open_request(ticket_id, scope, Kind.DATA_EXPORT)
        shares = {h.service: h.export(ticket.region, ticket.account_id) for h in self._holders}
        files = {
            f"{h.service}/{name}": content
            for h in self._holders
            if isinstance(h, PersonalFiles)
            for name, content in h.files(ticket.region, ticket.account_id).items()
        }
        at = self._clock()
        archive = _archive(ticket, shares, files, at, self.due(ticket))
        if len(archive) > self._max:
            raise ConflictError(f"the export is {len(archive)} bytes, over {self._max}")
        expires = at + self._ttl
        with self._pool.connection() as conn, conn.transaction():
            self._approve(conn, ticket, scope, at, actor, f"export ready until {expires:%F}")
            conn.execute(
                "INSERT INTO support.privacy_exports"
                " (ticket_id, region, account_id, archive, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (ticket.id, ticket.region.value, ticket.account_id, archive, at, expires),
            )
        return ExportReady(ticket.id, len(archive), expires)

    def download(self, ticket_id: int, scope: Scope) -> bytes:
        """The archive of an export ticket ``scope`` reaches, until it expires."""
        with self._pool.connection() as conn:
            if repo.get_ticket(conn, ticket_id, scope) is None:
                raise NotFoundError(f"no ticket {ticket_id}")
            row = conn.execute(
                "SELECT archive FROM support.privacy_exports"
                " WHERE ticket_id = %s AND expires_at > %s",
                (ticket_id, self._clock()),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no export to download for ticket {ticket_id}")
        return bytes(row[0])

    # -- erasure ------------------------------------------------------------------------
    def erase(self, ticket_id: int, scope: Scope, actor: str) -> ErasureRecord:
        """Staff approve an erasure request: every holder erases what law lets go, and
        the counts are the ticket's erasure record (once per ticket)."""
        ticket = self._open_request(ticket_id, scope, Kind.DATA_ERASURE)
        # The ticket is approved (its text erased with the rest) before the holders run,
        # so a failure half-way is retried by running the erasure again: each holder's
        # erase is idempotent.
        done = [h.erase(ticket.region, ticket.account_id) for h in self._holders]
        at = self._clock()
        counts = {e.service: {"erased": dict(e.erased), "kept": dict(e.kept)} for e in done}
        record = ErasureRecord(
            ticket_id=ticket.id,
            region=ticket.region,
            account_id=ticket.account_id,
            erased_at=at,
            erased_by=actor,
            counts=counts,
        )
        with self._pool.connection() as conn, conn.transaction():
            self._approve(conn, ticket, scope, at, actor, "personal data erased")
            conn.execute(
                "INSERT INTO support.erasures"
                " (ticket_id, region, account_id, erased_at, erased_by, counts)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (ticket.id, ticket.region.value, ticket.account_id, at, actor, Jsonb(counts)),
            )
        return record

    def erasure(self, ticket_id: int, scope: Scope) -> ErasureRecord | None:
        with self._pool.connection() as conn:
            if repo.get_ticket(conn, ticket_id, scope) is None:
                raise NotFoundError(f"no ticket {ticket_id}")
            row = (
                conn.cursor(row_factory=dict_row)
                .execute("SELECT * FROM support.erasures WHERE ticket_id = %s", (ticket_id,))
                .fetchone()
            )
        return None if row is None else ErasureRecord.model_validate(row)

    # -- inside -------------------------------------------------------------------------
    def _open_request(self, ticket_id: int, scope: Scope, kind: Kind) -> Ticket:
        with self._pool.connection() as conn:
            ticket = repo.get_ticket(conn, ticket_id, scope)
        if ticket is None:
            raise NotFoundError(f"no ticket {ticket_id}")
        if ticket.kind != kind:
            raise ConflictError(f"ticket {ticket_id} is not a {kind.value} request")
        if ticket.approved_at is not None:
            raise ConflictError(f"ticket {ticket_id} was already carried out")
        if ticket.state in {State.RESOLVED, State.CLOSED}:
            raise ConflictError(f"the ticket is {ticket.state.value}")
        return ticket

    def _approve(
        self, conn: Connection[Any], ticket: Ticket, scope: Scope, at: datetime, actor: str,
        note: str,
    ) -> None:  # fmt: skip
        locked = repo.get_ticket(conn, ticket.id, scope, lock=True)
        if locked is None or locked.approved_at is not None:
            raise ConflictError(f"ticket {ticket.id} was already carried out")
        repo.insert_event(conn, ticket.id, at, actor, "support", "approved", note=note)
        repo.update_ticket(conn, ticket.id, at, approved_at=at, approved_by=actor)


def _archive(
    ticket: Ticket, shares: dict[str, Export], files: dict[str, bytes], at: datetime, due: date
) -> bytes:
    manifest = {
        "account_id": ticket.account_id,
        "region": ticket.region.value,
        "ticket_id": ticket.id,
        "created_at": at.isoformat(),
        "legal_due": due.isoformat(),
        "services": {s: {k: len(v) for k, v in share.items()} for s, share in shares.items()},
        "files": sorted(files),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        for service, share in shares.items():
            archive.writestr(f"{service}.json", json.dumps(share, indent=2, default=str))
        for name, content in sorted(files.items()):
            archive.writestr(name, content)
    return buffer.getvalue()
