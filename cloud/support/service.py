"""The support service: tickets, their history, SLA clocks and the requests they send to
other services (by events through ``support.outbox``; it calls none).

Every change locks the ticket's row, writes a history line (who, when, note) and, where
the state moves, recomputes the SLA due times kept on the row for the queue's order.
The clocks themselves are :mod:`cloud.support.sla`'s pure functions over the ticket's
pauses (its pending and resolved spells, read from the history).

Facts it does not own come through ports given by the process's builder
(:mod:`cloud.bootstrap`): :data:`SiteFacts` (whose a site is and the jurisdiction of its
installation — the calendar its clocks count on), :data:`AccountKnown` and
:data:`InvoiceOwned` (billing's: a linked document is the account's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.calendars import BusinessCalendar, builtin_calendar
from cloud.events.outbox import emit, handle_once
from cloud.events.support import (
    TICKET_PLAN_CHANGE_APPROVED,
    TICKET_RESOLVED,
    TICKET_WORK_REQUESTED,
    PlanChangeApproved,
    TicketResolved,
    TicketWorkRequested,
    ticket_event,
)
from cloud.events.workorders import Priority as WorkPriority
from cloud.events.workorders import WorkOrderChanged
from cloud.scope import Scope
from cloud.support import repository as repo
from cloud.support.errors import ConflictError, InvalidError, NotFoundError
from cloud.support.lifecycle import (
    PAUSED,
    Kind,
    Priority,
    State,
    TransitionError,
    can_reopen,
    check_move,
)
from cloud.support.metrics import (
    Attainment,
    attainment,
    decided,
    month_bounds,
    months_up_to,
    ticket_rates,
)
from cloud.support.models import (
    Change,
    Link,
    LinkKind,
    QueueFilter,
    Sla,
    StaffMove,
    Ticket,
    TicketDetail,
    TicketIn,
    TicketRate,
)
from cloud.support.policy import SupportPolicy, load_policy
from cloud.support.sla import Clock, Pause, clock
from contracts.topics import Region

__all__ = [
    "SCHEMA",
    "AccountKnown",
    "Actor",
    "CustomerCounts",
    "InvoiceOwned",
    "SiteFact",
    "SiteFacts",
    "SupportService",
    "pauses",
]

SCHEMA = "support"
#: A fault report's priority → the work order's (P1 safety … P4 planned).
WORK_PRIORITY: dict[Priority, WorkPriority] = {
    Priority.URGENT: "P1",
    Priority.HIGH: "P2",
    Priority.NORMAL: "P3",
    Priority.LOW: "P4",
}
CUSTOMER = "customer"


@dataclass(frozen=True)
class Actor:
    """Who acts: a user id (or employee number) and the role it acts in."""

    subject: str
    role: str

    @property
    def is_customer(self) -> bool:
        return self.role == CUSTOMER


@dataclass(frozen=True)
class SiteFact:
    """A site's owner and the calendar jurisdiction of its installation (None: unknown,
    the region's default is used)."""

    account_id: str | None
    jurisdiction: str | None


#: ``(region, site_id)`` → the site's facts, None when the region has no such site.
SiteFacts = Callable[[Region, int], SiteFact | None]
#: ``(region, account_id)`` → whether the region has that customer account.
AccountKnown = Callable[[Region, str], bool]
#: ``(region, account_id, number)`` → whether document ``number`` is that account's.
InvoiceOwned = Callable[[Region, str, str], bool]
#: ``(region, instants)`` → the region's customers at each instant (one count each, in
#: order): the accounts created before it and not closed (customers' answer).
CustomerCounts = Callable[[Region, Sequence[datetime]], Sequence[int]]


def pauses(changes: list[tuple[datetime, State]]) -> list[Pause]:
    """The spells a ticket spent in a paused state (pending, resolved, closed), from the
    states it entered in order; the last is open while it stays paused."""
    out: list[Pause] = []
    started: datetime | None = None
    for at, state in changes:
        if state in PAUSED and started is None:
            started = at
        elif state not in PAUSED and started is not None:
            out.append(Pause(started, at))
            started = None
    if started is not None:
        out.append(Pause(started, None))
    return out


def _sla(c: Clock, target: timedelta) -> Sla:
    return Sla(
        due=c.due,
        met_at=c.stopped_at,
        used_s=int(c.used.total_seconds()),
        target_s=int(target.total_seconds()),
        breached=c.breached,
    )


class SupportService:
    def __init__(
        self,
        pool: ConnectionPool,
        *,
        site_facts: SiteFacts,
        account_known: AccountKnown,
        invoice_owned: InvoiceOwned | None = None,
        customer_counts: CustomerCounts | None = None,
        policy: SupportPolicy | None = None,
        calendar: Callable[[Region], BusinessCalendar] = builtin_calendar,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._site_facts = site_facts
        self._account_known = account_known
        self._invoice_owned = invoice_owned
        self._customer_counts = customer_counts
        self._policy = policy if policy is not None else load_policy()
        self._calendar = calendar
        self._clock = clock

    # -- reading --------------------------------------------------------------------
    def list_tickets(
        self, scope: Scope, given: QueueFilter, *, limit: int = 50, offset: int = 0
    ) -> list[Ticket]:
        """Tickets ``scope`` reaches (a customer's: its account's), most urgent first."""
        with self._pool.connection() as conn:
            return repo.list_tickets(conn, scope, given, limit, offset)

    def detail(self, ticket_id: int, scope: Scope, *, customer: bool) -> TicketDetail:
        """The ticket, its links, its history (``customer``: the lines meant for it) and
        its clocks now; :class:`NotFoundError` outside ``scope``."""
        with self._pool.connection() as conn:
            ticket = self._get(conn, ticket_id, scope)
            first, resolution = self._clocks(conn, ticket, self._clock())
            return TicketDetail(
                ticket=ticket,
                links=repo.links(conn, ticket_id),
                history=repo.history(conn, ticket_id, customer=customer),
                first_response=first,
                resolution=resolution,
            )

    # -- figures (cloud.support.metrics) --------------------------------------------
    def zone(self, region: Region) -> ZoneInfo:
        """The zone of ``region``'s months: its calendar's default jurisdiction's."""
        calendar = self._calendar(region)
        return calendar.time_zone(calendar.default_jurisdiction)

    def sla_attainment(self, region: Region, month: date) -> list[Attainment]:
        """Per priority, the clocks of ``region``'s tickets decided in the local
        ``month`` (measured, met): the reports' support SLA attainment."""
        since, until = month_bounds(month, self.zone(region))
        now = self._clock()
        with self._pool.connection() as conn:
            rows = repo.sla_candidates(conn, region, since, until)
        outcomes = []
        for r in rows:
            changes = list(zip(r["change_at"] or [], r["change_to"] or [], strict=True))
            state, priority = State(r["state"]), Priority(r["priority"])
            first, resolution = self._clock_pair(
                region, priority, r["jurisdiction"], r["created_at"],
                r["first_response_at"],
                r["resolved_at"] if state in {State.RESOLVED, State.CLOSED} else None,
                pauses([(at, State(to)) for at, to in changes]), now,
            )  # fmt: skip
            outcomes.append((priority, decided(first, now), decided(resolution, now)))
        return attainment(outcomes, since, until)

    def ticket_rates(
        self, scope: Scope, *, months: int, last: date | None = None
    ) -> list[TicketRate]:
        """Tickets per 1,000 customers in ``scope``'s region for each of ``months``
        local months ending with ``last`` (default: the last whole month), per kind and
        all together. :class:`InvalidError` for a scope of no one region or an
        account's (staff's figures)."""
        region = scope.region
        if region is None or scope.by_account:
            raise InvalidError("ticket rates are a region's, for its staff")
        zone = self.zone(region)
        if last is None:
            last = self._clock().astimezone(zone).date().replace(day=1) - timedelta(days=1)
        chosen = months_up_to(last, months)
        since = month_bounds(chosen[0], zone)[0]
        ends = [month_bounds(m, zone)[1] for m in chosen]
        with self._pool.connection() as conn:
            rows = repo.raised_per_month(conn, scope, zone.key, since, ends[-1])
        raised = {(m, Kind(kind)): n for m, kind, n in rows}
        counts = list(self._customer_counts(region, ends)) if self._customer_counts else []
        customers = dict(zip(chosen, counts, strict=False))
        return ticket_rates(chosen, raised, customers)

    # -- the customer's (and staff's) actions ----------------------------------------
    def create(
        self, region: Region, account_id: str | None, given: TicketIn, actor: Actor
    ) -> Ticket:
        """A new ticket of ``account_id`` (a customer: its own) in ``region``: state new,
        its links (site, invoice), its clocks from now on the site's jurisdiction."""
        if account_id is None:
            raise InvalidError("a ticket belongs to a customer account (account_id)")
        if not self._account_known(region, account_id):
            raise NotFoundError(f"no account {account_id} in {region}")
        jurisdiction = self._calendar(region).default_jurisdiction
        if given.site_id is not None:
            fact = self._site_facts(region, given.site_id)
            if fact is None or fact.account_id != account_id:
                raise InvalidError(f"site {given.site_id} is not this account's in {region}")
            jurisdiction = fact.jurisdiction or jurisdiction
        number, owned = given.invoice_number, self._invoice_owned
        if number is not None and owned is not None and not owned(region, account_id, number):
            raise InvalidError(f"invoice {number} is not this account's in {region}")
        at = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            ticket = repo.insert_ticket(
                conn, region, account_id, jurisdiction, given, actor.subject, at
            )
            repo.insert_event(
                conn, ticket.id, at, actor.subject, actor.role, "created",
                to_state=State.NEW, note=given.subject,
            )  # fmt: skip
            if given.site_id is not None:
                repo.insert_link(conn, ticket.id, Link(kind=LinkKind.SITE, ref=str(given.site_id)))
            if given.invoice_number is not None:
                repo.insert_link(
                    conn, ticket.id, Link(kind=LinkKind.INVOICE, ref=given.invoice_number)
                )
            return self._refresh(conn, ticket, at)

    def reply(
        self, ticket_id: int, scope: Scope, actor: Actor, text: str, *, internal: bool = False
    ) -> Ticket:
        """A reply on the ticket. Staff: the first one is the first response, a new
        ticket opens; ``internal`` makes it a note the customer does not see. The
        customer: a pending ticket goes back to open (its clocks run again)."""
        at = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            ticket = self._get(conn, ticket_id, scope, lock=True)
            if ticket.state == State.CLOSED:
                raise ConflictError("the ticket is closed")
            if actor.is_customer:
                internal = False
            action = "note" if internal else "reply"
            repo.insert_event(
                conn, ticket.id, at, actor.subject, actor.role, action,
                note=text, visible=not internal,
            )  # fmt: skip
            fields: dict[str, Any] = {}
            target: State | None = None
            if actor.is_customer:
                target = State.OPEN if ticket.state == State.PENDING else None
            elif not internal:
                if ticket.first_response_at is None:
                    fields["first_response_at"] = at
                target = State.OPEN if ticket.state == State.NEW else None
            if target is not None:
                self._enter(conn, ticket, target, at, actor, "")
                fields["state"] = target.value
            if fields:
                ticket = repo.update_ticket(conn, ticket.id, at, **fields)
            return self._refresh(conn, ticket, at)

    def reopen(self, ticket_id: int, scope: Scope, actor: Actor, note: str) -> Ticket:
        """The customer reopens a resolved ticket within the region's reopen window
        (else :class:`ConflictError`); its resolution clock runs again."""
        at = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            ticket = self._get(conn, ticket_id, scope, lock=True)
            window = self._policy.of(ticket.region).reopen_window
            if not can_reopen(ticket.state, ticket.resolved_at, at, window):
                raise ConflictError(
                    f"only a resolved ticket, within {window.days} days of its resolution"
                )
            repo.insert_event(
                conn, ticket.id, at, actor.subject, actor.role, "reopened",
                from_state=ticket.state, to_state=State.OPEN, note=note,
            )  # fmt: skip
            ticket = repo.update_ticket(conn, ticket.id, at, state=State.OPEN.value)
            return self._refresh(conn, ticket, at)

    # -- staff ----------------------------------------------------------------------
    def assign(self, ticket_id: int, scope: Scope, actor: Actor, assignee: str | None) -> Ticket:
        at = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            ticket = self._get(conn, ticket_id, scope, lock=True)
            if ticket.state == State.CLOSED:
                raise ConflictError("the ticket is closed")
            repo.insert_event(
                conn, ticket.id, at, actor.subject, actor.role, "assigned",
                note=assignee or "(nobody)", visible=False,
            )  # fmt: skip
            return repo.update_ticket(conn, ticket.id, at, assignee=assignee)

    def move(self, ticket_id: int, scope: Scope, actor: Actor, given: StaffMove) -> Ticket:
        """Staff move the ticket (:data:`~cloud.support.lifecycle.STAFF_MOVES`). Resolving
        records the outcome (a complaint's also its reasons: required) and emits
        ``ticket.resolved``, whose letter notify writes to the customer."""
        at = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            ticket = self._get(conn, ticket_id, scope, lock=True)
            try:
                check_move(ticket.state, given.state)
            except TransitionError as e:
                raise ConflictError(str(e)) from e
            fields: dict[str, Any] = {"state": given.state.value}
            if given.state == State.RESOLVED:
                fields.update(self._resolution(conn, ticket, given, at))
            elif given.state == State.CLOSED:
                fields["closed_at"] = at
            note = given.note or given.outcome
            self._enter(conn, ticket, given.state, at, actor, note)
            ticket = repo.update_ticket(conn, ticket.id, at, **fields)
            return self._refresh(conn, ticket, at)

    def approve(self, ticket_id: int, scope: Scope, actor: Actor, note: str) -> Ticket:
        """Staff approve a change request (once; not once resolved). A plan change emits
        ``ticket.plan_change_approved``: customers then moves the account to the plan
        from the date asked for, and billing rates with it."""
        at = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            ticket = self._get(conn, ticket_id, scope, lock=True)
            if ticket.kind != Kind.CHANGE_REQUEST:
                raise ConflictError("only a change request is approved")
            if ticket.approved_at is not None:
                raise ConflictError("the change request is already approved")
            if ticket.state in {State.RESOLVED, State.CLOSED}:
                raise ConflictError(f"the ticket is {ticket.state.value}")
            what = f"approved: {ticket.change.value if ticket.change else ''}"
            repo.insert_event(
                conn, ticket.id, at, actor.subject, actor.role, "approved",
                note=f"{what}. {note}".strip(),
            )  # fmt: skip
            if ticket.change == Change.PLAN_CHANGE:
                assert ticket.plan_code is not None
                assert ticket.plan_from is not None
                payload = PlanChangeApproved(
                    ticket_id=ticket.id,
                    region=ticket.region,
                    account_id=ticket.account_id,
                    at=at,
                    plan_code=ticket.plan_code,
                    effective_from=max(ticket.plan_from, _today(at)),
                    approved_by=actor.subject,
                )
                emit(conn, SCHEMA, ticket_event(TICKET_PLAN_CHANGE_APPROVED, payload, "approved"))
            return repo.update_ticket(
                conn, ticket.id, at, approved_at=at, approved_by=actor.subject
            )

    def request_work(self, ticket_id: int, scope: Scope, actor: Actor, note: str) -> Ticket:
        """Staff ask dispatch for a work order for a fault report at its site (once):
        ``ticket.work_requested``; the work order links back when dispatch raises it."""
        at = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            ticket = self._get(conn, ticket_id, scope, lock=True)
            if ticket.kind != Kind.FAULT_REPORT:
                raise ConflictError("only a fault report raises a work order")
            if ticket.work_requested_at is not None:
                raise ConflictError("a work order was already asked for")
            if ticket.state in {State.RESOLVED, State.CLOSED}:
                raise ConflictError(f"the ticket is {ticket.state.value}")
            sites = [lk.ref for lk in repo.links(conn, ticket.id) if lk.kind == LinkKind.SITE]
            if not sites:
                raise ConflictError("the fault report names no site")
            payload = TicketWorkRequested(
                ticket_id=ticket.id,
                region=ticket.region,
                account_id=ticket.account_id,
                at=at,
                site_id=int(sites[0]),
                priority=WORK_PRIORITY[ticket.priority],
                title=f"Fault report {ticket.id}: {ticket.subject}"[:120],
                description="\n\n".join(s for s in (ticket.description, note) if s)[:2000],
                requested_by=actor.subject,
            )
            emit(conn, SCHEMA, ticket_event(TICKET_WORK_REQUESTED, payload, "work"))
            repo.insert_event(
                conn, ticket.id, at, actor.subject, actor.role, "work_requested",
                note=note or "work order requested",
            )  # fmt: skip
            return repo.update_ticket(conn, ticket.id, at, work_requested_at=at)

    # -- events and sweeps ----------------------------------------------------------
    def record_work_order(self, event_id: Any, order: WorkOrderChanged) -> bool:
        """``workorder.created`` of a work order raised for a ticket (``ticket_id``):
        linked to it, once. False when not a ticket's or handled before."""
        if order.ticket_id is None:
            return False
        with self._pool.connection() as conn, conn.transaction():
            if not handle_once(conn, SCHEMA, event_id):
                return False
            scope = Scope.of_region(Region(order.region))
            ticket = repo.get_ticket(conn, order.ticket_id, scope, lock=True)
            if ticket is None:
                return False
            link = Link(kind=LinkKind.WORK_ORDER, ref=str(order.work_order_id))
            repo.insert_link(conn, ticket.id, link)
            repo.insert_event(
                conn, ticket.id, order.at, order.actor or "dispatch", "system", "work_order",
                note=f"work order {order.work_order_id}",
            )  # fmt: skip
            repo.update_ticket(conn, ticket.id, order.at, work_order_id=order.work_order_id)
            return True

    def close_expired(self, region: Region) -> int:
        """Close the resolved tickets of ``region`` whose reopen window has passed."""
        now = self._clock()
        window = self._policy.of(region).reopen_window
        closed = 0
        with self._pool.connection() as conn:
            for ticket_id in repo.resolved_before(conn, region, now - window):
                with conn.transaction():
                    ticket = repo.get_ticket(conn, ticket_id, Scope.of_region(region), lock=True)
                    if ticket is None or ticket.state != State.RESOLVED:
                        continue
                    system = Actor("system", "system")
                    self._enter(conn, ticket, State.CLOSED, now, system, "reopen window over")
                    repo.update_ticket(
                        conn, ticket.id, now, state=State.CLOSED.value, closed_at=now
                    )
                    closed += 1
        return closed

    # -- inside ---------------------------------------------------------------------
    def _get(
        self, conn: Connection[Any], ticket_id: int, scope: Scope, *, lock: bool = False
    ) -> Ticket:
        ticket = repo.get_ticket(conn, ticket_id, scope, lock=lock)
        if ticket is None:
            raise NotFoundError(f"no ticket {ticket_id}")
        return ticket

    def _enter(
        self, conn: Connection[Any], ticket: Ticket, state: State, at: datetime, actor: Actor,
        note: str,
    ) -> None:  # fmt: skip
        repo.insert_event(
            conn, ticket.id, at, actor.subject, actor.role, "state",
            from_state=ticket.state, to_state=state, note=note,
        )  # fmt: skip

    def _resolution(
        self, conn: Connection[Any], ticket: Ticket, given: StaffMove, at: datetime
    ) -> dict[str, Any]:
        if ticket.kind == Kind.COMPLAINT and not (given.outcome and given.reasons):
            raise InvalidError("a complaint is resolved with its outcome and reasons")
        outcome = given.outcome or given.note
        if not outcome:
            raise InvalidError("say the outcome to the customer (outcome)")
        resolutions = sum(1 for _, s in repo.state_changes(conn, ticket.id) if s == State.RESOLVED)
        payload = TicketResolved(
            ticket_id=ticket.id,
            region=ticket.region,
            account_id=ticket.account_id,
            at=at,
            kind=ticket.kind.value,
            subject=ticket.subject,
            language=ticket.language,
            jurisdiction=ticket.jurisdiction,
            outcome=outcome,
            reasons=given.reasons,
        )
        emit(conn, SCHEMA, ticket_event(TICKET_RESOLVED, payload, f"resolved-{resolutions + 1}"))
        return {"resolved_at": at, "outcome": outcome, "reasons": given.reasons or None}

    def _clocks(self, conn: Connection[Any], ticket: Ticket, now: datetime) -> tuple[Sla, Sla]:
        targets = self._policy.of(ticket.region).targets[ticket.priority]
        resolved = ticket.resolved_at if ticket.state in {State.RESOLVED, State.CLOSED} else None
        first, resolution = self._clock_pair(
            ticket.region, ticket.priority, ticket.jurisdiction, ticket.created_at,
            ticket.first_response_at, resolved, pauses(repo.state_changes(conn, ticket.id)), now,
        )  # fmt: skip
        return _sla(first, targets.first_response), _sla(resolution, targets.resolution)

    def _clock_pair(
        self, region: Region, priority: Priority, jurisdiction: str, created_at: datetime,
        first_response_at: datetime | None, resolved_at: datetime | None,
        spells: list[Pause], now: datetime,
    ) -> tuple[Clock, Clock]:  # fmt: skip
        """A ticket's first-response and resolution clocks at ``now`` (``resolved_at``:
        None unless it is resolved or closed now)."""
        targets = self._policy.of(region).targets[priority]
        calendar = self._calendar(region)
        first = clock(
            calendar, jurisdiction, created_at, targets.first_response, now,
            stopped_at=first_response_at, pauses=spells,
        )  # fmt: skip
        resolution = clock(
            calendar, jurisdiction, created_at, targets.resolution, now,
            stopped_at=resolved_at, pauses=spells,
        )  # fmt: skip
        return first, resolution

    def _refresh(self, conn: Connection[Any], ticket: Ticket, at: datetime) -> Ticket:
        """Keep the row's due times (the queue's order) as the clocks say now."""
        first, resolution = self._clocks(conn, ticket, at)
        return repo.update_ticket(
            conn, ticket.id, at, first_response_due=first.due, resolution_due=resolution.due
        )


def _today(at: datetime) -> date:
    return at.astimezone(UTC).date()
