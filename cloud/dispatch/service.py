"""DispatchService: work orders through their lifecycle, and what a technician records on
site.

Every change is one transaction on a pooled connection: the row (locked), its history,
its ``workorder.*`` event (``dispatch.outbox``) and, when the change came with an
idempotency key, the key with its answer commit together. A request whose (actor, key)
is stored already answers what it answered then and changes nothing; another request
under the same key is refused. A refused request stores nothing, its key included.

The lifecycle (:mod:`cloud.dispatch.lifecycle`) and the checklists
(:mod:`cloud.dispatch.checklists`) decide; this module only reads the facts they need
(the stored state, the ticks of the current visit) and stores what they answer.
Checklist ticks, photos, parts and the signature are the assigned MOSIE's, while the job
is on site. Sites (region, account, gateways) come from the registry's gateway events
(:meth:`DispatchService.record_gateway`). Time comes from the injected clock.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from cloud.adapters.postgres import Connection, ConnectionPool, ping
from cloud.adapters.solar import MAX_WINDOW, clear_sky_wh
from cloud.calendars import builtin_calendar
from cloud.dispatch import appointment_repository as appt_repo
from cloud.dispatch import flow_repository as flow_repo
from cloud.dispatch import repository as repo
from cloud.dispatch.appointments import (
    AppointmentJob,
    ConfirmRefusal,
    Offer,
    OfferSettings,
    Window,
    confirm,
    next_reminder_at,
    offer_windows,
    reminder_due,
)
from cloud.dispatch.assignment import (
    BINDING,
    CalendarFor,
    Job,
    Location,
    NoneEligible,
    Weights,
    assign,
)
from cloud.dispatch.assignment import Refusal as Unfit
from cloud.dispatch.assignment import judge as judge_technician
from cloud.dispatch.assignment import score as score_fit
from cloud.dispatch.charges import MAX_CHARGE_NOTE, charge_refusal, on_site_minutes
from cloud.dispatch.checklists import (
    ChecklistProgress,
    Checklists,
    Task,
    TaskTick,
    WorkOrderType,
    load_checklists,
)
from cloud.dispatch.door_code import SHOWN_IN as DOOR_CODE_SHOWN_IN
from cloud.dispatch.door_code import DoorCode, door_code
from cloud.dispatch.errors import (
    AppointmentRefused,
    ConflictError,
    LocationCode,
    LocationRefused,
    NotFoundError,
    RefusedError,
    TickRefused,
    TransitionRefused,
)
from cloud.dispatch.flow import (
    LICENCES,
    PRODUCTION_COUNTER,
    SKILLS,
    TYPE_LICENCES,
    FlowSettings,
    build_job,
    merge_counters,
    site_jurisdiction,
    sla_facts,
    visit_window,
    why_none,
    with_workload,
)
from cloud.dispatch.lifecycle import (
    ACTIVE_STATES,
    HUMAN_ROLES,
    MAX_REASON,
    ON_SITE_STATES,
    REOPEN_WINDOW,
    SLA_RUNNING_STATES,
    ActorRole,
    AuditRecord,
    Refusal,
    SlaTimer,
    TransitionContext,
    WorkOrderAction,
    WorkOrderStatus,
    transition,
)
from cloud.dispatch.models import (
    CURRENCIES,
    AppointmentView,
    BookedWindow,
    Description,
    HistoryEntry,
    IdempotencyKey,
    KnownSite,
    LocationRecorded,
    Note,
    NoteText,
    OfferedSlot,
    PartNo,
    PartStock,
    PartUse,
    Performance,
    Photo,
    ReorderCount,
    Signature,
    SignerName,
    Tick,
    Title,
    UnitValue,
    WorkOrder,
    WorkOrderIn,
)
from cloud.dispatch.photos import (
    DEFAULT_MAX_BYTES,
    PhotoMissing,
    PhotoStorage,
    check_upload,
    new_key,
)
from cloud.dispatch.policies import PolicyBook, PolicySet, WorkOrderRequest, load_policies
from cloud.dispatch.sap_status import SapStatusView, get_sap_status, record_sap_status
from cloud.dispatch.sla import SlaPolicy, breaches, builtin_policy, due
from cloud.dispatch.stock import StockValue, crosses_reorder_level, value_stock
from cloud.dispatch.verification import judge, produced_wh
from cloud.events.alerts import ALERT_CLEARED, ALERT_RAISED, AlarmChanged
from cloud.events.outbox import Event, emit, handle_once
from cloud.events.parts import PART_REORDER_NEEDED, PartReorderNeeded
from cloud.events.service_orders import ServiceOrderChanged
from cloud.events.support import TicketWorkRequested
from cloud.events.types import GatewayRegistration, InstallationChanged
from cloud.events.workorders import (
    CHARGE_REASONS,
    WORKORDER_APPOINTMENT_CONFIRMED,
    WORKORDER_APPOINTMENT_OFFERED,
    WORKORDER_APPOINTMENT_REMINDER,
    WORKORDER_CHARGEABLE_COMPLETED,
    WORKORDER_CREATED,
    WORKORDER_PARTS_USED,
    ChargedPart,
    ChargeReason,
    OfferedWindow,
    Priority,
    UsedPart,
    WorkOrderChanged,
    WorkOrderChargeable,
    WorkOrderPartsUsed,
    workorder_event_name,
)
from cloud.scope import Scope
from contracts.signing import canonical_bytes
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = ["MAX_PAGE", "SCHEMA", "DispatchService", "DutyFacts", "StaffDuty", "SweepResult"]

#: The dispatch service's PostgreSQL schema (and its outbox).
SCHEMA = "dispatch"
#: The largest list a read returns.
MAX_PAGE = 500
#: Who acts for the system (telemetry verification, SLA timers) in history and keys.
SYSTEM_ACTOR = "system"
#: Most parts one use may take.
MAX_PARTS = 1000
#: Parts added to the stock in one restock, and a part's description's characters.
MAX_RESTOCK = 100_000
MAX_PART_DESCRIPTION = 200
#: Why the system closes a job it verified (the acceptance: verified by telemetry, closed).
CLOSE_REASON = "verified by telemetry"
_EVERYWHERE = Scope.everything()
#: States in which a visit is still to be arranged: windows are offered, confirmed and
#: rescheduled only before the technician sets out.
BOOKABLE = frozenset(
    {WorkOrderStatus.SCHEDULED, WorkOrderStatus.ASSIGNED, WorkOrderStatus.ACCEPTED}
)
#: Who confirms or reschedules: the site's customer, or the office on their behalf.
BOOKERS = frozenset({ActorRole.CUSTOMER, ActorRole.ADMIN, ActorRole.OPERATOR, ActorRole.SUPPORT})
#: Who marks a job chargeable to the customer: its MOSIE on the job, or the office.
CHARGERS = frozenset({ActorRole.MOSIE, ActorRole.OPERATOR, ActorRole.ADMIN})
#: Reminders go until the technician arrives.
_REMINDABLE = BOOKABLE | {WorkOrderStatus.EN_ROUTE}
#: A technician on a job in these states is on duty whatever their hours say.
UNDER_WAY = frozenset({WorkOrderStatus.ACCEPTED, WorkOrderStatus.EN_ROUTE, WorkOrderStatus.ON_SITE})
#: How old a location fix may be when it arrives (a phone queues a few on a bad link),
#: and how far ahead of the server's clock it may say it was taken.
MAX_FIX_AGE = timedelta(minutes=15)
MAX_FIX_AHEAD = timedelta(minutes=2)
_R = TypeVar("_R", bound=BaseModel)
_Pool = ConnectionPool[Connection[Any]]
log = logging.getLogger(__name__)


def _valid(model: type[_R], **fields: Any) -> _R:
    """``model`` of ``fields``, a field out of bounds refused naming it."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "request"
        raise RefusedError(field, "", str(err["msg"]).removeprefix("Value error, ")) from None


class _Key(BaseModel):
    key: IdempotencyKey


class _NoteIn(BaseModel):
    text: NoteText


class _PartIn(BaseModel):
    part_no: PartNo
    quantity: int


class _SignerIn(BaseModel):
    signer_name: SignerName


class _IncidentIn(BaseModel):
    type: WorkOrderType
    priority: Priority
    title: Title
    description: Description = ""


class _FixIn(BaseModel):
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float = Field(gt=0, le=10_000, allow_inf_nan=False)
    at: AwareDatetime


class _ValueIn(BaseModel):
    unit_value: UnitValue | None = None


class _ReorderIn(BaseModel):
    reorder_level: ReorderCount | None = None
    reorder_quantity: ReorderCount | None = None


@dataclass(frozen=True, slots=True)
class DutyFacts:
    """What the employees service says of a technician for a location fix: whether they
    acknowledged the location notice's current version (``notice_version``), and
    whether the instant asked about is inside their working hours."""

    notice_version: int
    acknowledged: bool
    in_working_hours: bool


#: (region, employee number, instant) → the employee's :class:`DutyFacts`, None for one
#: not on the region's staff. Blocking; the composition root wires the employees
#: service's answer (dispatch imports nothing of it).
StaffDuty = Callable[[Region, str, datetime], DutyFacts | None]


def _fingerprint(operation: str, request: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes({"op": operation, **request})).hexdigest()


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep did: work orders raised by policies that came due, SLA timers
    breached, jobs verified (and closed) by telemetry."""

    created: int = 0
    breached: int = 0
    verified: int = 0
    offered: int = 0
    reminded: int = 0
    #: Location fixes forgotten (older than the retention).
    locations_purged: int = 0


class Candidate(BaseModel):
    """A technician of the region judged for a job, as the desk's rebook form shows them:
    eligible (no refusal; ``distance_km`` and ``open_jobs`` from the ranking's score),
    else every reason why not — ``binding`` when an override may not set it aside
    (region, licence, skill, absence, an inactive record)."""

    model_config = ConfigDict(frozen=True)

    employee_no: str
    refusals: tuple[Unfit, ...] = ()
    binding: bool = False
    distance_km: float | None = None
    open_jobs: int = 0
    #: The ranking's cost (km-equivalent, lower first; None: not eligible).
    cost: float | None = None

    @property
    def eligible(self) -> bool:
        return not self.refusals


class DispatchService:
    """Work orders, their history and events, and what is recorded on site; thread-safe
    (each call takes a pooled connection, one transaction per call)."""

    def __init__(
        self,
        pool: _Pool,
        *,
        clock: Callable[[], datetime] = utc_now,
        photos: PhotoStorage,
        checklists: Checklists | None = None,
        max_photo_bytes: int = DEFAULT_MAX_BYTES,
        policies: PolicySet | None = None,
        flow: FlowSettings | None = None,
        sla_policy: SlaPolicy | None = None,
        calendars: CalendarFor = builtin_calendar,
        offers: OfferSettings | None = None,
        staff: StaffDuty | None = None,
    ) -> None:
        self._pool = pool
        self._staff = staff
        self._offers = offers if offers is not None else OfferSettings()
        self._clock = clock
        self._photos = photos
        self._checklists = checklists if checklists is not None else load_checklists()
        self._max_photo_bytes = max_photo_bytes
        self._policies = policies if policies is not None else load_policies()
        self._flow = flow if flow is not None else FlowSettings()
        self._sla = sla_policy if sla_policy is not None else builtin_policy()
        self._calendars = calendars

    @property
    def max_photo_bytes(self) -> int:
        """The largest photo (or signature image) accepted, in bytes."""
        return self._max_photo_bytes

    @property
    def _location_retention(self) -> timedelta:
        return timedelta(days=self._flow.location_retention_days)

    @property
    def flow(self) -> FlowSettings:
        """The flow's settings (verification window, sweep interval …)."""
        return self._flow

    def ping(self) -> None:
        ping(self._pool)

    # -- sites (the registry's events) ----------------------------------------------------
    def record_gateway(self, event_id: UUID, reg: GatewayRegistration, at: datetime) -> bool:
        """Record a gateway's registration as of ``at``, once per event id (an older one
        than recorded changes nothing); False when the event was handled before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            repo.record_gateway(conn, reg, at)
            flow_repo.set_site_zone(conn, reg.site_id, reg.time_zone, at)
            return True

    def record_sap_status(self, event_id: UUID, changed: ServiceOrderChanged) -> bool:
        """SAP's word on a work order's service order (``service_order.changed``), shown
        with the work order; the lifecycle does not move (:mod:`cloud.dispatch.sap_status`)."""
        with self._pool.connection() as conn:
            return record_sap_status(conn, SCHEMA, event_id, changed)

    def sap_status(self, work_order_id: int) -> SapStatusView | None:
        """What SAP last said of ``work_order_id``'s service order, if anything."""
        with self._pool.connection() as conn:
            return get_sap_status(conn, work_order_id)

    def site(self, site_id: int) -> KnownSite | None:
        with self._pool.connection() as conn:
            return repo.get_site(conn, site_id)

    # -- work orders ----------------------------------------------------------------------
    def create(
        self,
        region: Region,
        site_id: int,
        type: str,
        priority: str,
        title: str,
        description: str,
        created_by: str,
        alarm_id: int | None = None,
        idempotency_key: str | None = None,
        *,
        role: ActorRole | str = ActorRole.OPERATOR,
        arrive_by: datetime | None = None,
        resolve_by: datetime | None = None,
    ) -> WorkOrder:
        """A new work order in ``scheduled`` for a site the registry announced in
        ``region`` (else :class:`NotFoundError`), with its ``workorder.created`` event.
        ``idempotency_key``: the request is applied once per (``created_by``, key)."""
        given = _valid(
            WorkOrderIn,
            region=region,
            site_id=site_id,
            type=type,
            priority=priority,
            title=title,
            description=description,
            created_by=created_by,
            alarm_id=alarm_id,
            arrive_by=arrive_by,
            resolve_by=resolve_by,
        )
        role = _role(role)
        request = {"given": given.model_dump(mode="json"), "role": role.value}

        def work(conn: Connection[Any]) -> WorkOrder:
            return self._create(conn, given, role)

        return self._run(created_by, idempotency_key, "create", request, WorkOrder, work)

    def _create(
        self,
        conn: Connection[Any],
        given: WorkOrderIn,
        role: ActorRole,
        reason: str | None = None,
    ) -> WorkOrder:
        site = repo.get_site(conn, given.site_id)
        if site is None or site.region != given.region:
            raise NotFoundError(f"no site {given.site_id} in {given.region}")
        at = self._clock()
        order = repo.insert_work_order(conn, given, site.account_id, at)
        repo.insert_created(conn, order, given.created_by, role.value, at, reason)
        payload = _payload(order, site.gateway_ids, at, actor=given.created_by)
        emit(conn, SCHEMA, _event(WORKORDER_CREATED, order, payload, at))
        return order

    def raise_incident(
        self,
        work_order_id: int,
        type: str,
        priority: str,
        title: str,
        description: str,
        actor_id: str,
        idempotency_key: str,
        *,
        scope: Scope | None = None,
    ) -> WorkOrder:
        """An incident the assigned MOSIE found on site during job ``work_order_id`` (which
        must be on site: :class:`ConflictError`; not theirs: :class:`NotFoundError`): a
        new work order of the same site and region, ``origin`` incident and ``found_on``
        the job, created by the MOSIE with its history line and ``workorder.created``;
        the job's history notes it. Like an alert policy's work order, it gets its SLA due
        times and goes to the best eligible technician, or stays scheduled with why."""
        wanted = _valid(
            _IncidentIn, type=type, priority=priority, title=title, description=description
        )
        request = {"work_order_id": work_order_id, **wanted.model_dump(mode="json")}

        def work(conn: Connection[Any]) -> WorkOrder:
            job = self._on_site(conn, work_order_id, actor_id, scope)
            given = WorkOrderIn(
                region=job.region,
                site_id=job.site_id,
                type=wanted.type,
                priority=wanted.priority,
                title=wanted.title,
                description=wanted.description,
                created_by=actor_id,
                origin="incident",
                found_on=job.id,
            )
            why = f"incident found on site during work order {job.id}"
            order = self._create(conn, given, ActorRole.MOSIE, why)
            raised = f"incident raised: work order {order.id} ({order.type}, {order.priority})"
            self._note(conn, job, order.created_at, actor_id, ActorRole.MOSIE, "incident", raised)
            assigned = self._auto_assign(conn, self._due_from(conn, order, order.created_at))
            self._offer(conn, assigned, "offer")
            return assigned

        return self._run(actor_id, idempotency_key, "incident", request, WorkOrder, work)

    def act(
        self,
        work_order_id: int,
        action: WorkOrderAction | str,
        actor_id: str,
        role: ActorRole | str,
        *,
        idempotency_key: str,
        reason: str | None = None,
        technician: str | None = None,
        expected_version: int | None = None,
        sla_timer: SlaTimer | str | None = None,
        scope: Scope | None = None,
    ) -> WorkOrder:
        """``action`` by ``actor_id`` as ``role``: the work order after it, stored with its
        history row and one ``workorder.<status>`` event. :class:`TransitionRefused` with
        the lifecycle's code when it refuses; :class:`NotFoundError` for a job not there
        (for a MOSIE: not theirs); :class:`ConflictError` when ``expected_version`` is not
        the stored one. ``technician``: who ``assign``/``reassign`` gives it to. ``scope``:
        the caller's reach (the portal's; a job outside it is not found)."""
        try:
            action, role = WorkOrderAction(action), ActorRole(role)
            timer = None if sla_timer is None else SlaTimer(sla_timer)
        except ValueError as exc:
            raise RefusedError("action", "", str(exc)) from None
        request = {
            "work_order_id": work_order_id,
            "action": action.value,
            "role": role.value,
            "reason": reason,
            "technician": technician,
            "expected_version": expected_version,
            "sla_timer": None if timer is None else timer.value,
        }

        def work(conn: Connection[Any]) -> WorkOrder:
            return self._act(
                conn,
                work_order_id,
                action,
                actor_id,
                role,
                reason=reason,
                technician=technician,
                expected_version=expected_version,
                sla_timer=timer,
                scope=scope,
            )

        return self._run(actor_id, idempotency_key, "act", request, WorkOrder, work)

    def _act(
        self,
        conn: Connection[Any],
        work_order_id: int,
        action: WorkOrderAction,
        actor_id: str,
        role: ActorRole,
        *,
        reason: str | None = None,
        technician: str | None = None,
        expected_version: int | None = None,
        sla_timer: SlaTimer | None = None,
        scope: Scope | None = None,
    ) -> WorkOrder:
        """:meth:`act` in the caller's transaction (no idempotency key)."""
        if action in {WorkOrderAction.CLOSE, WorkOrderAction.CANCEL}:
            # A policy is released in this transaction: its region's state is locked
            # before the work order, in the order the alert consumer takes them.
            self._lock_policies_of(conn, work_order_id)
        order = self._locked(conn, work_order_id, actor_id, role, scope)
        if expected_version is not None and order.version != expected_version:
            raise ConflictError(
                f"work order {work_order_id} is at version {order.version},"
                f" not {expected_version}: read it again"
            )
        at = self._clock()
        progress = self._progress(conn, order)
        context = _valid(
            TransitionContext,
            at=at,
            actor_id=None if role is ActorRole.SYSTEM else actor_id,
            reason=reason,
            assignee=technician,
            safety_complete=progress is not None and progress.safety_complete,
            checklist_complete=progress is not None and progress.complete,
            sla_timer=sla_timer,
        )
        result = transition(order.state(), action, role, context)
        if isinstance(result, Refusal):
            raise TransitionRefused(result)
        chosen = action in {WorkOrderAction.ASSIGN, WorkOrderAction.REASSIGN}
        set_aside = None
        if chosen and role in HUMAN_ROLES and technician is not None:
            set_aside = self._overridden(conn, order, technician)
        after = repo.update_state(conn, order.id, result.order, at)
        repo.insert_history(conn, order.id, result.audit, actor_id, after.resolve_by)
        if set_aside:
            self._note(conn, after, at, actor_id, role, "override", set_aside)
        self._announce(conn, after, result.audit, actor_id)
        self._after_transition(conn, after, at)
        # Billed once: a job reopened and resolved again was already sent to billing
        # (its repeat visit is PoTR's cost, like a first visit that did not fix it).
        chargeable = after.charge_reason is not None and after.charge_billed_at is None
        if action is WorkOrderAction.RESOLVE and chargeable:
            after = self._bill_charge(conn, after, actor_id, at)
        return after

    # -- charging the customer (business.md §6) ----------------------------------------
    def set_charge(
        self,
        work_order_id: int,
        reason: ChargeReason | str | None,
        note: str,
        actor_id: str,
        role: ActorRole | str,
        *,
        idempotency_key: str,
        scope: Scope | None = None,
    ) -> WorkOrder:
        """Mark the job chargeable to the customer for ``reason`` (None: PoTR's own cost,
        as every job starts), with ``note`` saying what the customer caused or owns; by
        the job's MOSIE or the office, before completion. Audited as a ``charge``
        history line. :class:`RefusedError` for an unknown reason or a note out of
        bounds (a reason needs a note); :class:`ConflictError` once the job is
        completed or its charge was sent to billing."""
        role = _role(role)
        if role not in CHARGERS:
            raise RefusedError("role", "", f"a {role.value} does not mark jobs chargeable")
        if reason is not None and reason not in CHARGE_REASONS:
            raise RefusedError("reason", "|".join(CHARGE_REASONS), f"reason {str(reason)[:40]!r}")
        note = note.strip()
        if len(note) > MAX_CHARGE_NOTE or (reason is not None and not note):
            raise RefusedError("note", f"1-{MAX_CHARGE_NOTE}", "a note of that length")
        if reason is None:
            note = ""
        request = {"work_order_id": work_order_id, "reason": reason, "note": note}

        def work(conn: Connection[Any]) -> WorkOrder:
            order = self._locked(conn, work_order_id, actor_id, role, scope)
            refused = charge_refusal(order)
            if refused is not None:
                raise ConflictError(refused)
            at = self._clock()
            after = repo.set_charge(conn, order.id, reason, note, at)
            said = f"chargeable: {reason}: {note}" if reason else "not chargeable"
            self._note(conn, after, at, actor_id, role, "charge", said)
            return after

        return self._run(actor_id, idempotency_key, "charge", request, WorkOrder, work)

    def _bill_charge(
        self, conn: Connection[Any], order: WorkOrder, actor: str, at: datetime
    ) -> WorkOrder:
        """``workorder.chargeable_completed`` for billing, once per job, in the resolve's
        transaction: the parts used at their recorded cost and the on-site minutes."""
        assert order.charge_reason is not None
        parts = [ChargedPart.model_validate(p) for p in repo.parts_of(conn, order.id)]
        minutes = on_site_minutes(repo.history(conn, order.id), at)
        after = repo.charge_billed(conn, order.id, at)
        base = _payload(
            after,
            repo.gateway_ids(conn, order.site_id),
            at,
            actor=actor,
            action="chargeable",
            from_status=after.status.value,
        )
        payload = WorkOrderChargeable(
            **base.model_dump(),
            reason=order.charge_reason,
            note=order.charge_note,
            parts=parts,
            labour_minutes=minutes,
            completed_at=at,
        )
        emit(conn, SCHEMA, _event(WORKORDER_CHARGEABLE_COMPLETED, after, payload, at))
        return after

    def _overridden(self, conn: Connection[Any], order: WorkOrder, technician: str) -> str | None:
        """A person's choice of ``technician`` judged by assignment's filters for the job's
        visit (its confirmed appointment, else the first business-hours window): refused
        (:class:`RefusedError`) past a binding filter (region, licence, skill, inactive,
        absent); what it sets aside (hours, a holiday, a clash) as a history line's reason,
        or None. A technician dispatch has no record of, or a site without a place, is not
        judged (the person's call, as before dispatch heard of them)."""
        job = self._visit_job(conn, order)
        records = [
            r
            for r in flow_repo.technicians(conn, order.region)
            if r.get("employee_no") == technician
        ]
        if job is None or not records:
            return None
        busy = [o for o in flow_repo.open_orders(conn, [technician]) if o.id != order.id]
        crew = with_workload(records, busy)
        if not crew:
            return None
        refusals = judge_technician(job, crew[0], self._calendars).refusals
        said = "; ".join(f"{r.reason.value} ({r.detail})" for r in refusals)
        if any(r.reason in BINDING for r in refusals):
            raise RefusedError("technician", "", f"{technician} may not take this job: {said}")
        if not refusals:
            return None
        text = f"{technician} assigned outside eligibility: {said}"
        return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"

    def _visit_job(self, conn: Connection[Any], order: WorkOrder) -> Job | None:
        """``order`` as assignment judges it: for its confirmed appointment's booking when
        the customer has one, else the first business-hours window from now; None when
        the site's place is unknown (nothing to judge travel by)."""
        calendar = self._calendars(order.region)
        place, zone = flow_repo.site_place(conn, order.site_id)
        if place is None:
            return None
        jurisdiction = site_jurisdiction(calendar, zone)
        booked = appt_repo.appointment(conn, order.id)
        arrival = None if booked is None else (booked[0].window.starts, booked[0].window.ends)
        duration = self._flow.job_duration
        window = visit_window(arrival, calendar, jurisdiction, self._clock(), duration)
        return build_job(
            order_id=order.id,
            region=order.region,
            type=order.type.value,
            priority=order.priority,
            jurisdiction=jurisdiction,
            site=place,
            window=window,
            sla_due=order.arrive_by or window[1],
            duration=duration,
        )

    def set_due(
        self, work_order_id: int, *, arrive_by: datetime | None, resolve_by: datetime | None
    ) -> WorkOrder:
        """Store the SLA due times (computed on the region's business calendar elsewhere)."""
        with self._pool.connection() as conn:
            order = repo.set_due(conn, work_order_id, arrive_by, resolve_by, self._clock())
            if order is None:
                raise NotFoundError(f"no work order {work_order_id}")
            return order

    # -- the flow: alarm → work order → technician → verified repair -------------------
    def record_technician(
        self, event_id: UUID, record: dict[str, Any], region: Region, at: datetime
    ) -> bool:
        """A technician's record as the employees service announced it (``employee.changed``:
        the whole record), the newest winning, once per event id; False when handled
        before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            employee_no, active = str(record["employee_no"]), bool(record.get("active", True))
            flow_repo.record_technician(conn, employee_no, region, active, record, at)
            return True

    def record_installation(self, event_id: UUID, installation: InstallationChanged) -> bool:
        """A site's array (``site.installation_changed``), the newest winning, once per
        event id; False when handled before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            flow_repo.record_installation(conn, installation)
            return True

    def handle_alarm(
        self, event_id: UUID, name: str, alarm: AlarmChanged, region: Region
    ) -> list[WorkOrder] | None:
        """An ``alert.*`` event, in one transaction: the site's alarm as it is now (what
        verification reads); a raise of the rule that raised a job verified within the
        reopen window reopens it; raises and clears go to the alert policies, whose
        requests become work orders, each assigned to the best eligible technician.
        The work orders created or reopened; None when the event was handled before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            counted = name in {ALERT_RAISED, ALERT_CLEARED}
            # Locked first, before any work order: raises count once and in order.
            state = flow_repo.lock_policy_state(conn, region) if counted else None
            flow_repo.record_alarm(conn, alarm)
            if not counted:
                return []
            out = self._reopen_returned(conn, alarm) if name == ALERT_RAISED else []
            book = PolicyBook(self._policies, state)
            for request in book.on_alarm(name, alarm, region.value):
                created = self._fulfil(conn, book, request, f"{request.policy}-{event_id.hex}")
                out += [created] if created is not None else []
            flow_repo.save_policy_state(conn, region, book.snapshot())
            return out

    def handle_work_request(self, event_id: UUID, request: TicketWorkRequested) -> WorkOrder | None:
        """Support's ``ticket.work_requested`` (a customer's fault report), in one
        transaction: a work order of the site (``inspection``; origin ``support``, the
        ticket named), its SLA due times set and assigned like an alert policy's, and its
        ``workorder.created`` — which tells support its id. Once per event and per
        ticket; None when handled before, already raised, or the site is unknown here."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            if repo.work_order_of_ticket(conn, request.ticket_id) is not None:
                return None
            site = repo.get_site(conn, request.site_id)
            if site is None or site.region != request.region:
                log.warning(
                    "ticket %d: site %d unknown in %s: no work order",
                    request.ticket_id, request.site_id, request.region.value,
                )  # fmt: skip
                return None
            given = WorkOrderIn(
                region=site.region,
                site_id=site.site_id,
                type=WorkOrderType.INSPECTION,
                priority=request.priority,
                title=request.title,
                description=request.description,
                created_by=request.requested_by,
                origin="support",
                ticket_id=request.ticket_id,
            )
            why = f"fault report: support ticket {request.ticket_id}"
            order = self._create(conn, given, ActorRole.SYSTEM, why)
            assigned = self._auto_assign(conn, self._due_from(conn, order, order.created_at))
            self._offer(conn, assigned, "offer")
            return assigned

    def record_samples(
        self, gateway_id: str, samples: Sequence[tuple[str, str, datetime, float]]
    ) -> int:
        """A gateway's ``telemetry.received`` batch: its inverters' pv_wh readings, for the
        resolved work orders of its site only (first and last reading since each resolve,
        per device). No inbox row: a redelivered batch leaves the same first and last.
        How many work orders' counters changed."""
        readings = [
            (f"{gateway_id}/{device}", metric, at, value)
            for device, metric, at, value in samples
            if metric == PRODUCTION_COUNTER
        ]
        if not readings:
            return 0
        changed = 0
        with self._pool.connection() as conn:
            for order_id, since, counters in flow_repo.awaiting_on_gateway(conn, gateway_id):
                merged = merge_counters(counters, readings, since)
                if merged != counters:
                    flow_repo.set_counters(conn, order_id, merged)
                    changed += 1
        return changed

    def verdict(self, work_order_id: int) -> str | None:
        """Why a resolved job is (not yet) verified, as the last sweep judged it."""
        with self._pool.connection() as conn:
            return flow_repo.verdict(conn, work_order_id)

    def sweep(self, now: datetime | None = None) -> SweepResult:
        """The flow's timers at ``now`` (default: the clock): alert policies whose alarm
        has lasted long enough raise work orders; SLA timers past due are breached;
        resolved jobs whose site's telemetry shows the repair held are verified and
        closed. Each region, and each job, in its own transaction."""
        at = now if now is not None else self._clock()
        created = sum(self._policies_due(region, at) for region in self._policy_regions())
        breached = sum(self._breach(order_id, at) for order_id in self._running())
        verified = sum(self._verify(order_id, at) for order_id in self._resolved())
        offered = sum(self._offer_due(order_id, at) for order_id in self._unoffered(at))
        reminded = sum(self._remind(order_id, at) for order_id in self._reminders_due(at))
        with self._pool.connection() as conn:
            purged = repo.purge_locations(conn, at - self._location_retention, None)
        return SweepResult(created, breached, verified, offered, reminded, purged)

    def _policy_regions(self) -> list[Region]:
        with self._pool.connection() as conn:
            return flow_repo.policy_regions(conn)

    def _running(self) -> list[int]:
        with self._pool.connection() as conn:
            return flow_repo.running(conn, {s.value for s in SLA_RUNNING_STATES})

    def _resolved(self) -> list[int]:
        with self._pool.connection() as conn:
            return [order_id for order_id, _, _ in flow_repo.awaiting(conn)]

    def _policies_due(self, region: Region, now: datetime) -> int:
        with self._pool.connection() as conn:
            book = PolicyBook(self._policies, flow_repo.lock_policy_state(conn, region))
            requests = book.due(now)
            if not requests:
                return 0
            created = 0
            for request in requests:
                mark = f"{request.policy}:{request.site_id}:{request.at.isoformat()}"
                key = f"{request.policy}-{uuid.uuid5(uuid.NAMESPACE_URL, mark).hex}"
                created += self._fulfil(conn, book, request, key) is not None
            flow_repo.save_policy_state(conn, region, book.snapshot())
            return created

    def _fulfil(
        self, conn: Connection[Any], book: PolicyBook, request: WorkOrderRequest, key: str
    ) -> WorkOrder | None:
        """A policy's request: a work order (its SLA due times set), assigned when someone
        may take it; nothing while a work order of a policy on the same alert rule is
        open on the site, or for a site dispatch does not know (the policy is then
        released to fire again)."""
        # One fault, one job: a policy on the same alert rule (tripped twice; tripped
        # and not reset) whose work order on the site is open already has it in hand.
        rule = next(p.rule for p in self._policies.policies if p.id == request.policy)
        siblings = [p.id for p in self._policies.for_rule(rule)]
        if flow_repo.open_policy_order(conn, siblings, request.site_id) is not None:
            return None
        site = repo.get_site(conn, request.site_id)
        if site is None or site.region.value != request.region:
            log.warning(
                "policy %s: site %d unknown in %s: no work order",
                request.policy,
                request.site_id,
                request.region,
            )
            book.released(request.policy, request.site_id)
            return None
        given = WorkOrderIn(
            region=site.region,
            site_id=site.site_id,
            type=request.type,
            priority=request.priority,
            title=request.title,
            description=f"Raised by alert policy {request.policy} (alarm {request.alarm_id}).",
            created_by=SYSTEM_ACTOR,
            alarm_id=request.alarm_id,
            origin="policy",
        )
        payload = {"given": given.model_dump(mode="json"), "role": ActorRole.SYSTEM.value}
        order = self._keyed(
            conn,
            SYSTEM_ACTOR,
            key,
            "create",
            payload,
            WorkOrder,
            lambda c: self._create(c, given, ActorRole.SYSTEM),
        )
        flow_repo.insert_policy_order(conn, order.id, request.policy, site.site_id, _key_uuid(key))
        assigned = self._auto_assign(conn, self._due_from(conn, order, order.created_at))
        self._offer(conn, assigned, "offer")
        return assigned

    def _auto_assign(self, conn: Connection[Any], order: WorkOrder) -> WorkOrder:
        """Assign a scheduled job to the best eligible technician of its region for its
        visit — the confirmed appointment's booking, else the first business-hours window
        from now (their other open jobs as workload; the appointment stays with the job);
        when nobody is eligible, the job stays scheduled with why in its history."""
        at = self._clock()
        job = self._visit_job(conn, order)
        if job is None:
            reason = "not assigned: the site's location is unknown (assign by hand)"
            flow_repo.note_in_history(conn, order.id, order.status.value, at, reason)
            return order
        records = flow_repo.technicians(conn, order.region)
        crew = [str(r.get("employee_no")) for r in records]
        busy = [o for o in flow_repo.open_orders(conn, crew) if o.id != order.id]
        fresh = at - timedelta(seconds=self._flow.location_fresh_s)
        positions = {
            no: Location(latitude=lat, longitude=lon)
            for no, (lat, lon) in repo.latest_positions(conn, crew, fresh).items()
        }
        technicians = with_workload(records, busy, positions)
        outcome = assign(job, technicians, calendars=self._calendars)
        if isinstance(outcome, NoneEligible):
            flow_repo.note_in_history(conn, order.id, order.status.value, at, why_none(outcome))
            return order
        s = outcome.score
        reason = (
            f"auto-assigned: {s.distance_km:.1f} km away, {s.open_jobs} open job(s);"
            f" {len(outcome.shortlist)} eligible"
        )
        return self._act(
            conn,
            order.id,
            WorkOrderAction.ASSIGN,
            SYSTEM_ACTOR,
            ActorRole.SYSTEM,
            reason=reason,
            technician=outcome.employee_no,
        )

    def candidates(self, work_order_id: int, scope: Scope) -> list[Candidate] | None:
        """The region's technicians judged for the work order (within ``scope``) as
        auto-assignment judges them, for its visit (:meth:`_visit_job`): the eligible ones
        first, nearest and least busy first, then those an override may choose, then the
        others, each by employee number. None when the site's location is unknown."""
        with self._pool.connection() as conn:
            order = _reachable(conn, work_order_id, scope, None)
            job = self._visit_job(conn, order)
            if job is None:
                return None
            records = flow_repo.technicians(conn, order.region)
            crew = [str(r.get("employee_no")) for r in records]
            busy = [o for o in flow_repo.open_orders(conn, crew) if o.id != order.id]
        out = []
        for tech in with_workload(records, busy):
            refusals = judge_technician(job, tech, self._calendars).refusals
            if refusals:
                binding = any(r.reason in BINDING for r in refusals)
                out.append(
                    Candidate(employee_no=tech.employee_no, refusals=refusals, binding=binding)
                )
                continue
            fit = score_fit(job, tech, Weights())
            out.append(
                Candidate(
                    employee_no=tech.employee_no,
                    distance_km=fit.distance_km,
                    open_jobs=fit.open_jobs,
                    cost=fit.total,
                )
            )

        def rank(c: Candidate) -> tuple[int, float, str]:
            group = 0 if c.eligible else 2 if c.binding else 1
            return group, c.cost or 0.0, c.employee_no

        return sorted(out, key=rank)

    def _reopen_returned(self, conn: Connection[Any], alarm: AlarmChanged) -> list[WorkOrder]:
        """Jobs whose fault (their origin alarm's rule) is back on the site within the
        reopen window of their verification: reopened, due afresh, assigned again."""
        out = []
        since = alarm.at - REOPEN_WINDOW
        for order_id in flow_repo.reopenable(conn, alarm.site_id, alarm.rule_id, since):
            try:
                order = self._act(
                    conn,
                    order_id,
                    WorkOrderAction.REOPEN,
                    SYSTEM_ACTOR,
                    ActorRole.SYSTEM,
                    reason=f"the fault returned: {alarm.title} (alarm {alarm.alarm_id})"[:500],
                )
            except TransitionRefused as exc:  # verified longer ago by the job's own clock
                log.info("work order %d not reopened: %s", order_id, exc)
                continue
            order = self._due_from(conn, order, order.updated_at)
            appt_repo.clear_appointment(conn, order.id)  # a new visit: a new appointment
            assigned = self._auto_assign(conn, order)
            self._offer(conn, assigned, "offer")
            out.append(assigned)
        return out

    def _due_from(self, conn: Connection[Any], order: WorkOrder, start: datetime) -> WorkOrder:
        """Store the SLA due times of ``order`` counted from ``start`` (its creation, or
        its reopening: the timers start afresh) on its site's jurisdiction's calendar."""
        calendar = self._calendars(order.region)
        _, zone = flow_repo.site_place(conn, order.site_id)
        jurisdiction = site_jurisdiction(calendar, zone)
        dues = due(start, order.priority, order.region, jurisdiction, self._sla, calendar)
        after = repo.set_due(conn, order.id, dues.arrive_by, dues.resolve_by, self._clock())
        assert after is not None  # written in this transaction
        return after

    def _breach(self, order_id: int, now: datetime) -> int:
        """Breach the job's SLA timers past due at ``now`` (the lifecycle's ``sla``)."""
        with self._pool.connection() as conn:
            order = self._locked(conn, order_id, SYSTEM_ACTOR, ActorRole.SYSTEM)
            if order.status not in SLA_RUNNING_STATES:
                return 0
            calendar = self._calendars(order.region)
            _, zone = flow_repo.site_place(conn, order.site_id)
            facts = sla_facts(
                created_at=order.created_at,
                priority=order.priority,
                region=order.region,
                jurisdiction=site_jurisdiction(calendar, zone),
                history=flow_repo.transitions(conn, order.id),
            )
            count = 0
            for timer in sorted(breaches(now, facts, self._sla, calendar) - order.sla_breached):
                try:
                    self._act(
                        conn,
                        order.id,
                        WorkOrderAction.SLA,
                        SYSTEM_ACTOR,
                        ActorRole.SYSTEM,
                        sla_timer=timer,
                    )
                except TransitionRefused:
                    continue  # arrive-by stopped: the technician is on site
                count += 1
            return count

    def _verify(self, order_id: int, now: datetime) -> int:
        """Judge a resolved job on its site's telemetry at ``now``; verified: verify and
        close it (1), else keep the verdict for the board (0)."""
        with self._pool.connection() as conn:
            self._lock_policies_of(conn, order_id)  # the close releases it: lock order
            order = self._locked(conn, order_id, SYSTEM_ACTOR, ActorRole.SYSTEM)
            rows = [r for r in flow_repo.awaiting(conn) if r[0] == order_id]
            if order.status is not WorkOrderStatus.RESOLVED or not rows:
                return 0
            _, resolved_at, counters = rows[0]
            cleared, serious = flow_repo.alarm_facts(conn, order.site_id, order.alarm_id)
            array = flow_repo.pv_site(conn, order.site_id)
            expected = None
            if array is not None and now > resolved_at:
                expected = clear_sky_wh(array, max(resolved_at, now - MAX_WINDOW), now)
            first = {d: float(c["first"]) for d, c in counters.items()}
            last = {d: float(c["last"]) for d, c in counters.items()}
            verdict = judge(
                resolved_at=resolved_at,
                now=now,
                fault_cleared=cleared,
                serious_alarms_active=serious,
                produced=produced_wh(first, last),
                expected_wh=expected,
                policy=self._flow.verification(),
            )
            reason = verdict.reason
            if array is None:
                reason += " (the site's location or array is unknown: judged on the fault only)"
            flow_repo.set_verdict(conn, order.id, reason, now)
            if not verdict.verified:
                return 0
            for action, why in (
                (WorkOrderAction.VERIFY, reason),
                (WorkOrderAction.CLOSE, CLOSE_REASON),
            ):
                self._act(conn, order.id, action, SYSTEM_ACTOR, ActorRole.SYSTEM, reason=why)
            return 1

    def _lock_policies_of(self, conn: Connection[Any], work_order_id: int) -> None:
        row = repo.get_work_order(conn, work_order_id, _EVERYWHERE)
        if row is not None and flow_repo.policy_of(conn, row.id) is not None:
            flow_repo.lock_policy_state(conn, row.region)

    def _after_transition(self, conn: Connection[Any], order: WorkOrder, at: datetime) -> None:
        """What a transition starts: a resolve, the watch on the site's telemetry; a
        close or cancel, the release of the policy that raised the job."""
        if order.status is WorkOrderStatus.RESOLVED:
            flow_repo.start_verification(conn, order.id, order.site_id, at)
        elif order.status in {WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED}:
            policy = flow_repo.policy_of(conn, order.id)
            if policy is None:
                return
            book = PolicyBook(self._policies, flow_repo.lock_policy_state(conn, order.region))
            # Every policy on the rule: a sibling's request met this open job instead.
            rule = next((p.rule for p in self._policies.policies if p.id == policy), None)
            for sibling in self._policies.for_rule(rule) if rule is not None else []:
                book.released(sibling.id, order.site_id)
            flow_repo.save_policy_state(conn, order.region, book.snapshot())

    # -- appointments -------------------------------------------------------------------------
    def offer(self, work_order_id: int) -> AppointmentView:
        """Offer the job's customer arrival windows now (a new offer replaces the live
        one): those of its technician once assigned, else of anyone in the region who may
        take it. An offer with no window is kept (so the sweep waits until it expires)
        and announced to nobody."""
        with self._pool.connection() as conn:
            order = self._locked(conn, work_order_id, SYSTEM_ACTOR, ActorRole.SYSTEM)
            if order.status not in BOOKABLE:
                raise AppointmentRefused("not_bookable", f"the job is {order.status}")
            self._offer(conn, order, "offer")
            return self._view(conn, order.id)

    def appointment(
        self, work_order_id: int, scope: Scope, *, assignee: str | None = None
    ) -> AppointmentView:
        """The job's live offer and confirmed window, within ``scope``."""
        with self._pool.connection() as conn:
            order = _reachable(conn, work_order_id, scope, assignee)
            return self._view(conn, order.id)

    def confirm_appointment(
        self,
        work_order_id: int,
        window_start: datetime,
        actor_id: str,
        role: ActorRole | str,
        idempotency_key: str,
        *,
        scope: Scope | None = None,
    ) -> AppointmentView:
        """The customer (or the office for them) confirms the live offer's window starting
        at ``window_start``: it becomes the job's booked window (its technician's booking
        from its start to its end plus the job's duration). :class:`AppointmentRefused`:
        ``not_offered`` (422), ``offer_expired``, ``too_late``, ``no_offer``,
        ``not_bookable`` (409)."""
        role = self._booker(role)
        if window_start.tzinfo is None:
            raise RefusedError("start", "", "an aware instant")
        start = window_start.astimezone(UTC)
        request = {"work_order_id": work_order_id, "start": start.isoformat(), "role": role.value}

        def work(conn: Connection[Any]) -> AppointmentView:
            order = self._bookable(conn, work_order_id, actor_id, role, scope)
            stored = appt_repo.latest_offer(conn, order.id)
            if stored is None or not stored[2].windows:
                raise AppointmentRefused("no_offer", "no windows are offered for this job")
            offer_id, zone, offer = stored
            chosen = next((w for w in offer.windows if w.starts == start), None)
            if chosen is None:
                raise AppointmentRefused("not_offered", "not one of the windows offered")
            at = self._clock()
            result = confirm(chosen, offer, at)
            if isinstance(result, ConfirmRefusal):
                raise AppointmentRefused(result.code.value, result.reason)
            window = result.window
            booked_until = window.ends + self._flow.job_duration
            remind_at = next_reminder_at(window, at)
            appt_repo.set_appointment(
                conn, offer_id, zone, result, booked_until, actor_id, role.value, remind_at
            )
            why = f"appointment confirmed: {window.label}"
            self._note(conn, order, at, actor_id, role, "confirm_appointment", why)
            self._announce_appointment(
                conn, order, WORKORDER_APPOINTMENT_CONFIRMED, "confirm", actor_id, at
            )
            return self._view(conn, order.id)

        return self._run(actor_id, idempotency_key, "appointment", request, AppointmentView, work)

    def reschedule_appointment(
        self,
        work_order_id: int,
        actor_id: str,
        role: ActorRole | str,
        idempotency_key: str,
        *,
        reason: str | None = None,
        scope: Scope | None = None,
    ) -> AppointmentView:
        """Give up the confirmed window (or, with none, turn the live offer down) for a
        new offer whose windows overlap none of them; the old booking is freed."""
        role = self._booker(role)
        if reason is not None and not 1 <= len(reason) <= MAX_REASON:
            raise RefusedError("reason", f"1-{MAX_REASON}", "a reason of that length")
        request = {"work_order_id": work_order_id, "role": role.value, "reason": reason}

        def work(conn: Connection[Any]) -> AppointmentView:
            order = self._bookable(conn, work_order_id, actor_id, role, scope)
            booked = appt_repo.appointment(conn, order.id)
            old: Window | None = None
            if booked is not None:
                old = booked[0].window
                exclude: tuple[Window, ...] = (old,)
            else:
                stored = appt_repo.latest_offer(conn, order.id)
                exclude = stored[2].windows if stored is not None else ()
            appt_repo.clear_appointment(conn, order.id)
            offer_id = self._offer(conn, order, "reschedule", exclude=exclude, actor=actor_id)
            assert offer_id is not None  # bookable: checked above
            at = self._clock()
            appt_repo.insert_change(conn, order.id, old, offer_id, actor_id, role.value, at, reason)
            why = "appointment rescheduled" + (f": {old.label}" if old is not None else "")
            self._note(conn, order, at, actor_id, role, "reschedule_appointment", why)
            return self._view(conn, order.id)

        return self._run(actor_id, idempotency_key, "reschedule", request, AppointmentView, work)

    def _booker(self, role: ActorRole | str) -> ActorRole:
        role = _role(role)
        if role not in BOOKERS:
            raise RefusedError("role", "", f"a {role} does not book the customer's visit")
        return role

    def _bookable(
        self,
        conn: Connection[Any],
        work_order_id: int,
        actor_id: str,
        role: ActorRole,
        scope: Scope | None,
    ) -> WorkOrder:
        order = self._locked(conn, work_order_id, actor_id, role, scope)
        if order.status not in BOOKABLE:
            raise AppointmentRefused(
                "not_bookable", f"the job is {order.status}: the visit is no longer arranged"
            )
        return order

    def _offer(
        self,
        conn: Connection[Any],
        order: WorkOrder,
        reason: str,
        *,
        exclude: Sequence[Window] = (),
        actor: str = SYSTEM_ACTOR,
    ) -> int | None:
        """Store a new offer for ``order`` and announce it when it holds a window; its id
        (None: the job is past arranging a visit). A site whose place is unknown gets an
        empty offer (nothing to judge travel by)."""
        if order.status not in BOOKABLE:
            return None
        at = self._clock()
        calendar = self._calendars(order.region)
        place, zone = flow_repo.site_place(conn, order.site_id)
        jurisdiction = site_jurisdiction(calendar, zone)
        site_zone = zone or str(calendar.time_zone(jurisdiction))
        if place is None:  # nothing to judge travel by: an empty offer, kept till it expires
            empty = Offer(
                job_id=str(order.id),
                offered_at=at,
                expires_at=at + self._offers.valid_for,
                windows=(),
            )
            return appt_repo.insert_offer(conn, empty, site_zone, reason)
        job = AppointmentJob(
            id=str(order.id),
            region=order.region,
            jurisdiction=jurisdiction,
            site_zone=site_zone,
            site=place,
            priority=int(order.priority[1]),
            licences=LICENCES.get(order.region, ())
            + TYPE_LICENCES.get((order.region, order.type.value), ()),
            skills=SKILLS.get(order.type.value, ()),
            duration=self._flow.job_duration,
            arrive_by=order.arrive_by,
        )
        records = flow_repo.technicians(conn, order.region)
        if order.assignee is not None:  # the job is theirs: their diary decides
            records = [r for r in records if r.get("employee_no") == order.assignee]
        busy = flow_repo.open_orders(conn, [str(r.get("employee_no")) for r in records])
        crew = with_workload(records, busy)
        offer = offer_windows(
            job, crew, at, self._offers, exclude=exclude, calendars=self._calendars
        )
        offer_id = appt_repo.insert_offer(conn, offer, site_zone, reason)
        if offer.windows:
            offered = [
                OfferedWindow(start=w.starts, end=w.ends, label=w.label, past_sla=w.past_sla)
                for w in offer.windows
            ]
            self._announce_appointment(
                conn, order, WORKORDER_APPOINTMENT_OFFERED, reason, actor, at, offered=offered
            )
        return offer_id

    def _view(self, conn: Connection[Any], work_order_id: int) -> AppointmentView:
        view = AppointmentView(work_order_id=work_order_id)
        stored = appt_repo.latest_offer(conn, work_order_id)
        if stored is not None:
            offer_id, _, offer = stored
            slots = [
                OfferedSlot(
                    starts=w.starts,
                    ends=w.ends,
                    label=w.label,
                    past_sla=w.past_sla,
                    confirm_by=w.confirm_by,
                )
                for w in offer.windows
            ]
            view = view.model_copy(
                update={
                    "offer_id": offer_id,
                    "offered_at": offer.offered_at,
                    "offer_expires_at": offer.expires_at,
                    "windows": slots,
                }
            )
        booked = appt_repo.appointment(conn, work_order_id)
        if booked is not None:
            appointment, by, role = booked
            w = appointment.window
            window = BookedWindow(
                starts=w.starts,
                ends=w.ends,
                label=w.label,
                confirmed_at=appointment.confirmed_at,
                confirmed_by=by,
                role=role,
            )
            view = view.model_copy(update={"appointment": window})
        return view

    def _note(
        self,
        conn: Connection[Any],
        order: WorkOrder,
        at: datetime,
        actor: str,
        role: ActorRole,
        action: str,
        reason: str,
    ) -> None:
        """A history line that changes no state, where the office reads every step."""
        conn.execute(
            "INSERT INTO dispatch.history (work_order_id, at, actor, role, action, from_state,"
            " to_state, reason, assignee) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                order.id,
                at,
                actor,
                role.value,
                action,
                order.status.value,
                order.status.value,
                reason[:MAX_REASON],
                order.assignee,
            ),
        )

    def _announce_appointment(
        self,
        conn: Connection[Any],
        order: WorkOrder,
        name: str,
        action: str,
        actor: str,
        at: datetime,
        *,
        offered: list[OfferedWindow] | None = None,
        lead: timedelta | None = None,
    ) -> None:
        payload = _payload(
            order,
            repo.gateway_ids(conn, order.site_id),
            at,
            actor=actor,
            action=action,
            from_status=order.status.value,
        )
        booked = appt_repo.appointment(conn, order.id)
        update: dict[str, Any] = {"offered": offered or []}
        if booked is not None:
            update |= {
                "appointment_start": booked[0].window.starts,
                "appointment_end": booked[0].window.ends,
            }
        if lead is not None:
            update["reminder_lead_s"] = int(lead.total_seconds())
        emit(conn, SCHEMA, _event(name, order, payload.model_copy(update=update), at))

    def _unoffered(self, now: datetime) -> list[int]:
        with self._pool.connection() as conn:
            return appt_repo.jobs_without_offer(conn, {s.value for s in BOOKABLE}, now)

    def _offer_due(self, order_id: int, now: datetime) -> int:
        """A job with neither an appointment nor a live offer (raised by hand, or its
        offer expired unanswered): a fresh offer; 1 when one holding windows went out."""
        with self._pool.connection() as conn:
            order = self._locked(conn, order_id, SYSTEM_ACTOR, ActorRole.SYSTEM)
            if appt_repo.appointment(conn, order.id) is not None:
                return 0
            stored = appt_repo.latest_offer(conn, order.id)
            if stored is not None and stored[2].expires_at > now:
                return 0  # offered meanwhile
            offer_id = self._offer(conn, order, "offer")
            if offer_id is None:
                return 0
            fresh = appt_repo.latest_offer(conn, order.id)
            return int(fresh is not None and bool(fresh[2].windows))

    def _reminders_due(self, now: datetime) -> list[int]:
        with self._pool.connection() as conn:
            return appt_repo.due_reminders(conn, now)

    def _remind(self, order_id: int, now: datetime) -> int:
        """The reminder of the job's appointment due at ``now`` (once per lead: the row
        is unique), then when the next falls due; 1 when one went out."""
        with self._pool.connection() as conn:
            order = self._locked(conn, order_id, SYSTEM_ACTOR, ActorRole.SYSTEM)
            booked = appt_repo.appointment(conn, order.id)
            if booked is None:
                return 0
            window = booked[0].window
            appt_repo.set_remind_at(conn, order.id, next_reminder_at(window, now))
            if order.status not in _REMINDABLE:
                return 0
            sent = appt_repo.sent_leads(conn, order.id, window.starts)
            lead = reminder_due(window, now, sent=sent)
            if lead is None or not appt_repo.mark_reminder(
                conn, order.id, window.starts, lead, now
            ):
                return 0
            self._announce_appointment(
                conn, order, WORKORDER_APPOINTMENT_REMINDER, "remind", SYSTEM_ACTOR, now, lead=lead
            )
            return 1

    # -- on site ----------------------------------------------------------------------------
    def tick(
        self,
        work_order_id: int,
        task_id: str,
        actor_id: str,
        idempotency_key: str,
        photo_key: str | None = None,
        note: str | None = None,
        *,
        scope: Scope | None = None,
    ) -> Tick:
        """Tick a checklist task of the current visit (the assigned MOSIE, on site);
        :class:`TickRefused` with the checklist's code when it refuses. ``photo_key``: a
        photo already added to this work order."""
        request = {
            "work_order_id": work_order_id,
            "task_id": task_id,
            "photo": photo_key,
            "note": note,
        }

        def work(conn: Connection[Any]) -> Tick:
            order = self._on_site(conn, work_order_id, actor_id, scope)
            if photo_key is not None and not repo.has_photo(conn, order.id, photo_key):
                raise RefusedError("photo_key", "", "no such photo of this work order")
            progress = self._progress(conn, order)
            assert progress is not None  # on site: a visit is under way
            at = self._clock()
            try:
                result = progress.tick(task_id, actor_id, at, photo=photo_key, note=note)
            except ValidationError as exc:
                raise RefusedError("task", "", str(exc.errors()[0]["msg"])) from None
            if not isinstance(result, ChecklistProgress):
                raise TickRefused(result)
            tick = Tick(
                work_order_id=order.id,
                visit=order.visits,
                task_id=task_id,
                by=actor_id,
                at=at,
                photo_key=photo_key,
                note=note,
            )
            repo.insert_tick(conn, tick)
            return tick

        return self._run(actor_id, idempotency_key, "tick", request, Tick, work)

    def add_note(
        self,
        work_order_id: int,
        text: str,
        actor_id: str,
        role: ActorRole | str,
        idempotency_key: str,
        *,
        scope: Scope | None = None,
    ) -> Note:
        """A note on the job: by its assigned MOSIE, or by staff (admin, operator,
        support) on any job."""
        role = _role(role)
        body = _valid(_NoteIn, text=text).text
        if role in {ActorRole.CUSTOMER, ActorRole.SYSTEM}:
            raise RefusedError("role", "", f"a {role} does not write notes on a work order")
        request = {"work_order_id": work_order_id, "text": body, "role": role.value}

        def work(conn: Connection[Any]) -> Note:
            order = self._locked(conn, work_order_id, actor_id, role, scope)
            return repo.insert_note(conn, order.id, actor_id, role.value, self._clock(), body)

        return self._run(actor_id, idempotency_key, "note", request, Note, work)

    def add_photo(
        self,
        work_order_id: int,
        content: bytes,
        declared_type: str,
        actor_id: str,
        idempotency_key: str,
        *,
        scope: Scope | None = None,
    ) -> Photo:
        """Store a photo of the job (the assigned MOSIE, on site): JPEG, PNG or WebP by
        its magic bytes, at most the configured size (:class:`RefusedError` before
        anything is stored). The metadata row and the key commit together; the bytes
        are removed again when the transaction does not commit."""
        content_type = check_upload(content, declared_type, max_bytes=self._max_photo_bytes)
        digest = hashlib.sha256(content).hexdigest()
        request = {"work_order_id": work_order_id, "sha256": digest, "type": content_type}
        written: list[str] = []

        def work(conn: Connection[Any]) -> Photo:
            order = self._on_site(conn, work_order_id, actor_id, scope)
            key = new_key(order.id, content_type)
            written.append(key)
            self._photos.put(key, content)
            photo = {
                "work_order_id": order.id,
                "storage_key": key,
                "content_type": content_type,
                "bytes": len(content),
                "sha256": digest,
                "by": actor_id,
                "at": self._clock(),
            }
            return repo.insert_photo(conn, photo)

        return self._with_files(written, actor_id, idempotency_key, "photo", request, Photo, work)

    def use_part(
        self,
        work_order_id: int,
        part_no: str,
        quantity: int,
        actor_id: str,
        idempotency_key: str,
        *,
        scope: Scope | None = None,
    ) -> PartUse:
        """Take ``quantity`` of ``part_no`` from the job's region's stock for the job (the
        assigned MOSIE, on site), in the transaction that records it: never below zero
        (:class:`ConflictError` naming what is left; :class:`NotFoundError` for a part
        the region does not stock)."""
        part = _valid(_PartIn, part_no=part_no, quantity=quantity)
        if not 1 <= part.quantity <= MAX_PARTS:
            raise RefusedError("quantity", f"1-{MAX_PARTS}", f"{quantity} parts")
        request = {"work_order_id": work_order_id, "part_no": part_no, "quantity": quantity}

        def work(conn: Connection[Any]) -> PartUse:
            order = self._on_site(conn, work_order_id, actor_id, scope)
            at = self._clock()
            line = repo.take_part(conn, order.region, part.part_no, part.quantity, at)
            if line is None:
                have = repo.in_stock(conn, order.region, part.part_no)
                if have is None:
                    raise NotFoundError(f"no part {part.part_no} in the {order.region} stock")
                raise ConflictError(
                    f"only {have} of {part.part_no} in the {order.region} stock,"
                    f" {part.quantity} asked"
                )
            use = repo.insert_part_use(
                conn, order.id, order.region, part.part_no, part.quantity, actor_id, at, line
            )
            self._announce_parts(conn, order, use)
            if crosses_reorder_level(line, part.quantity):
                self._announce_reorder(conn, line, use)
            return use

        return self._run(actor_id, idempotency_key, "part", request, PartUse, work)

    def _announce_parts(self, conn: Connection[Any], order: WorkOrder, use: PartUse) -> None:
        """``workorder.parts_used`` for billing and SAP, in the use's transaction."""
        value = None if use.unit_value is None else use.unit_value * use.quantity
        used = UsedPart(
            part_no=use.part_no,
            quantity=use.quantity,
            unit_value=use.unit_value,
            value=value,
            currency=use.currency,
        )
        base = _payload(
            order,
            repo.gateway_ids(conn, order.site_id),
            use.at,
            actor=use.by,
            action="parts_used",
            from_status=order.status.value,
        )
        payload = WorkOrderPartsUsed(**base.model_dump(), part_use_id=use.id, parts=[used])
        emit(conn, SCHEMA, _event(WORKORDER_PARTS_USED, order, payload, use.at))

    def _announce_reorder(self, conn: Connection[Any], line: PartStock, use: PartUse) -> None:
        """``part.reorder_needed`` for the region's office, in the use's transaction."""
        payload = PartReorderNeeded(
            region=line.region.value,
            part_no=line.part_no,
            description=line.description,
            quantity=line.quantity,
            reorder_level=line.reorder_level,
            reorder_quantity=line.reorder_quantity,
            unit_value=line.unit_value,
            currency=line.currency,
            part_use_id=use.id,
            work_order_id=use.work_order_id,
            at=use.at,
        )
        event = Event(
            name=PART_REORDER_NEEDED,
            region=line.region,
            source=SCHEMA,
            occurred_at=use.at,
            payload=payload.model_dump(mode="json"),
        )
        emit(conn, SCHEMA, event)

    def sign(
        self,
        work_order_id: int,
        signer_name: str,
        image: bytes,
        actor_id: str,
        idempotency_key: str,
        declared_type: str = "image/png",
        *,
        scope: Scope | None = None,
    ) -> Signature:
        """The customer's signature on this visit (the assigned MOSIE's phone, on site);
        the image is checked and stored like a photo. Once per visit
        (:class:`ConflictError`)."""
        signer = _valid(_SignerIn, signer_name=signer_name).signer_name
        content_type = check_upload(image, declared_type, max_bytes=self._max_photo_bytes)
        digest = hashlib.sha256(image).hexdigest()
        request = {"work_order_id": work_order_id, "signer": signer, "sha256": digest}
        written: list[str] = []

        def work(conn: Connection[Any]) -> Signature:
            order = self._on_site(conn, work_order_id, actor_id, scope)
            if repo.signature(conn, order.id, order.visits) is not None:
                raise ConflictError("the customer has signed for this visit already")
            key = new_key(order.id, content_type)
            written.append(key)
            self._photos.put(key, image)
            signature = Signature(
                work_order_id=order.id,
                visit=order.visits,
                signer_name=signer,
                storage_key=key,
                content_type=content_type,
                bytes=len(image),
                sha256=digest,
                by=actor_id,
                at=self._clock(),
            )
            repo.insert_signature(conn, signature)
            return signature

        return self._with_files(
            written, actor_id, idempotency_key, "sign", request, Signature, work
        )

    # -- the technician's location ----------------------------------------------------------
    def record_location(
        self,
        employee_no: str,
        region: Region,
        latitude: float,
        longitude: float,
        accuracy_m: float,
        at: datetime,
        idempotency_key: str,
    ) -> LocationRecorded:
        """Store a location fix of the MOSIE ``employee_no`` taken at ``at`` — only when
        they acknowledged the location notice's current version and are on duty now:
        inside their working hours, or on a job accepted, en route or on site.
        :class:`LocationRefused` (``notice_not_acknowledged``, ``off_duty``) otherwise,
        and nothing is stored; :class:`NotFoundError` for someone not on the region's
        staff; :class:`RefusedError` for a value out of bounds or a fix older than
        :data:`MAX_FIX_AGE` (or ahead of the clock). Each write forgets the employee's
        fixes past the retention."""
        fix = _valid(_FixIn, latitude=latitude, longitude=longitude, accuracy_m=accuracy_m, at=at)
        now = self._clock()
        if not now - MAX_FIX_AGE <= fix.at <= now + MAX_FIX_AHEAD:
            raise RefusedError("at", "the last 15 minutes", "a fix taken recently")
        request = {"region": region.value, **fix.model_dump(mode="json")}
        # Asked before the transaction: the employees service's answer takes a connection
        # of its own, and a transaction waiting on a second one could starve the pool.
        facts = self._staff(region, employee_no, now) if self._staff is not None else None

        def work(conn: Connection[Any]) -> LocationRecorded:
            if facts is None:
                raise NotFoundError(f"no employee {employee_no} in {region.value}")
            if not facts.acknowledged:
                raise LocationRefused(
                    LocationCode.NOTICE_NOT_ACKNOWLEDGED,
                    f"acknowledge version {facts.notice_version} of the location notice first:"
                    " nothing was recorded",
                )
            job = repo.job_under_way(conn, employee_no, UNDER_WAY)
            if job is None and not facts.in_working_hours:
                raise LocationRefused(
                    LocationCode.OFF_DUTY,
                    "outside your working hours and on no accepted, en route or on-site job:"
                    " nothing was recorded",
                )
            duty: Literal["working_hours", "on_job"] = "on_job" if job else "working_hours"
            repo.purge_locations(conn, now - self._location_retention, employee_no)
            stored = {
                **fix.model_dump(),
                "employee_no": employee_no,
                "region": region.value,
                "received_at": now,
                "duty": duty,
                "work_order_id": job,
            }
            repo.insert_location(conn, stored)
            return LocationRecorded(
                employee_no=employee_no, at=fix.at, received_at=now, duty=duty, work_order_id=job
            )

        return self._run(employee_no, idempotency_key, "location", request, LocationRecorded, work)

    # -- parts stock ------------------------------------------------------------------------
    def add_stock(
        self,
        region: Region,
        part_no: str,
        quantity: int,
        description: str | None = None,
        *,
        unit_value: Decimal | None = None,
        reorder_level: int | None = None,
        reorder_quantity: int | None = None,
    ) -> PartStock:
        """``quantity`` (≥ 0; 0 changes only the part's settings) more of ``part_no`` in
        ``region``'s stock; ``unit_value``: its unit cost in the region's currency from
        now on; ``reorder_level`` and ``reorder_quantity``: when and how many to reorder
        (each None: unchanged, 0 for a new part). :class:`RefusedError` names a value
        out of bounds."""
        part = _valid(_PartIn, part_no=part_no, quantity=quantity)
        if not 0 <= part.quantity <= MAX_RESTOCK:
            raise RefusedError("quantity", f"0-{MAX_RESTOCK}", f"{quantity} parts")
        if description is not None and len(description) > MAX_PART_DESCRIPTION:
            raise RefusedError(
                "description", f"at most {MAX_PART_DESCRIPTION} characters", "longer"
            )
        value = _valid(_ValueIn, unit_value=unit_value).unit_value
        levels = _valid(_ReorderIn, reorder_level=reorder_level, reorder_quantity=reorder_quantity)
        valuation = None if value is None else (value, CURRENCIES[region])
        with self._pool.connection() as conn:
            return repo.add_stock(
                conn, region, part.part_no, part.quantity, description, self._clock(),
                valuation, (levels.reorder_level, levels.reorder_quantity),
            )  # fmt: skip

    def stock_value(self, region: Region) -> StockValue:
        """``region``'s stock valued at each part's unit cost (:mod:`cloud.dispatch.stock`)."""
        return value_stock(self.stock(region), CURRENCIES[region])

    def checklist(self, kind: str) -> tuple[Task, ...]:
        """The tasks of a work-order type's checklist, in order (safety first): what a
        screen lists."""
        return self._checklists[kind].tasks

    def stock(self, region: Region) -> list[PartStock]:
        with self._pool.connection() as conn:
            return repo.stock(conn, region)

    # -- reads --------------------------------------------------------------------------------
    def get(self, work_order_id: int, scope: Scope, *, assignee: str | None = None) -> WorkOrder:
        """The work order within ``scope`` (``assignee``: a MOSIE's, only their own jobs);
        :class:`NotFoundError` otherwise, as for one that does not exist."""
        with self._pool.connection() as conn:
            return _reachable(conn, work_order_id, scope, assignee)

    def history(
        self, work_order_id: int, scope: Scope, *, assignee: str | None = None
    ) -> list[HistoryEntry]:
        with self._pool.connection() as conn:
            _reachable(conn, work_order_id, scope, assignee)
            return repo.history(conn, work_order_id)

    def ticks(self, work_order_id: int, scope: Scope, *, assignee: str | None = None) -> list[Tick]:
        """The checklist ticks of the job's current visit."""
        with self._pool.connection() as conn:
            order = _reachable(conn, work_order_id, scope, assignee)
            return repo.ticks(conn, order.id, order.visits)

    def photos(
        self, work_order_id: int, scope: Scope, *, assignee: str | None = None
    ) -> list[Photo]:
        with self._pool.connection() as conn:
            _reachable(conn, work_order_id, scope, assignee)
            return repo.photos(conn, work_order_id)

    def notes(self, work_order_id: int, scope: Scope, *, assignee: str | None = None) -> list[Note]:
        with self._pool.connection() as conn:
            _reachable(conn, work_order_id, scope, assignee)
            return repo.notes(conn, work_order_id)

    def door_code(
        self, work_order_id: int, scope: Scope, *, assignee: str | None = None
    ) -> DoorCode:
        """The job's door code now (:mod:`cloud.dispatch.door_code`), for its customer
        (``scope`` of the job's account) or its MOSIE (``assignee``) while it is en route
        or on site; :class:`NotFoundError` otherwise, to anyone else, as for no job."""
        with self._pool.connection() as conn:
            found = repo.door_secret(
                conn, work_order_id, scope, assignee=assignee, statuses=DOOR_CODE_SHOWN_IN
            )
        if found is None:
            raise NotFoundError(f"no door code for work order {work_order_id}")
        order, secret = found
        assert order.assignee is not None  # the query asks for an assigned job
        return door_code(secret, order.visits, order.assignee, self._clock())

    def photo_content(
        self, work_order_id: int, photo_id: int, scope: Scope, *, assignee: str | None = None
    ) -> tuple[Photo, bytes]:
        """A photo of a job within reach and its bytes; :class:`NotFoundError` for a job
        or photo not there (or bytes the storage lost)."""
        with self._pool.connection() as conn:
            _reachable(conn, work_order_id, scope, assignee)
            photo = repo.photo(conn, work_order_id, photo_id)
        if photo is None:
            raise NotFoundError(f"no photo {photo_id} of work order {work_order_id}")
        try:
            return photo, self._photos.get(photo.storage_key)
        except PhotoMissing:
            raise NotFoundError(f"photo {photo_id} is not in the photo storage") from None

    def list_for_technician(
        self,
        employee_no: str,
        day: date | None = None,
        *,
        zone: tzinfo = UTC,
        scope: Scope | None = None,
    ) -> list[WorkOrder]:
        """A MOSIE's jobs still to do, the most urgent first; ``day`` (in ``zone``, the
        technician's): only those due to be reached by that day's end or with no due
        time — today's route, overdue ones included. ``scope``: only those within it."""
        before = None
        if day is not None:
            before = datetime.combine(day + timedelta(days=1), time(), zone)
        with self._pool.connection() as conn:
            return repo.list_work_orders(
                conn,
                scope or _EVERYWHERE,
                assignee=employee_no,
                statuses=ACTIVE_STATES,
                arrive_before=before,
                limit=MAX_PAGE,
            )

    def board(
        self,
        region: Region,
        statuses: Collection[WorkOrderStatus | str] | None = None,
        *,
        scope: Scope | None = None,
        assignee: str | None = None,
        site_id: int | None = None,
        priorities: Collection[str] | None = None,
        breached: bool | None = None,
        limit: int = MAX_PAGE,
        offset: int = 0,
    ) -> list[WorkOrder]:
        """The region's work orders in ``statuses`` (default: every active one) within
        ``scope`` (default: the whole region), the most urgent first; ``assignee``,
        ``site_id``: only one technician's, one site's; ``priorities``: only those
        (``P1`` …); ``breached``: only those with (True) or without (False) a breached SLA
        timer; a page of at most ``limit`` (≤ :data:`MAX_PAGE`) after ``offset``."""
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise RefusedError("limit", f"1-{MAX_PAGE}", f"limit {limit}, offset {offset}")
        within = (scope or Scope.of_region(region)).within(region)
        if within is None:
            return []
        try:
            wanted = ACTIVE_STATES if statuses is None else {WorkOrderStatus(s) for s in statuses}
        except ValueError as exc:
            raise RefusedError("statuses", "", str(exc)) from None
        with self._pool.connection() as conn:
            return repo.list_work_orders(
                conn,
                within,
                assignee=assignee,
                statuses=wanted,
                site_id=site_id,
                priorities=priorities,
                breached=breached,
                limit=limit,
                offset=offset,
            )

    def technicians(self, region: Region) -> list[str]:
        """The employee numbers of the region's active technicians (as dispatch last
        heard of them from employees' events), in order."""
        with self._pool.connection() as conn:
            return [str(r.get("employee_no")) for r in flow_repo.technicians(conn, region)]

    def performance(
        self,
        region: Region,
        employee_no: str | None = None,
        *,
        since: datetime,
        until: datetime,
    ) -> Performance:
        """Jobs done, SLA met and first-time fix rate in ``region`` over [since, until)
        (one technician's with ``employee_no``)."""
        if since.tzinfo is None or until.tzinfo is None or until <= since:
            raise RefusedError("until", "> since", "an aware period that ends after it starts")
        with self._pool.connection() as conn:
            return repo.performance(conn, region, employee_no, since, until)

    def purge_keys(self, older_than: timedelta = timedelta(days=30)) -> int:
        """Forget idempotency keys older than ``older_than`` (a phone retries within
        minutes or days, not months); how many were forgotten."""
        with self._pool.connection() as conn:
            return repo.purge_keys(conn, self._clock() - older_than)

    # -- internals ----------------------------------------------------------------------------
    def _run(
        self,
        actor: str,
        key: str | None,
        operation: str,
        request: dict[str, Any],
        model: type[_R],
        work: Callable[[Connection[Any]], _R],
    ) -> _R:
        """``work`` in one transaction, once per (``actor``, ``key``) when a key is given:
        a repeat answers the stored result, another request under the key is refused."""
        with self._pool.connection() as conn:
            return self._keyed(conn, actor, key, operation, request, model, work)

    def _keyed(
        self,
        conn: Connection[Any],
        actor: str,
        key: str | None,
        operation: str,
        request: dict[str, Any],
        model: type[_R],
        work: Callable[[Connection[Any]], _R],
    ) -> _R:
        """:meth:`_run` in the caller's transaction."""
        if key is None:
            return work(conn)
        _valid(_Key, key=key)
        fingerprint = _fingerprint(operation, request)
        stored = repo.claim_key(conn, actor, key, fingerprint, operation, self._clock())
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise RefusedError(
                    "idempotency_key", "", "idempotency key reused with another request"
                )
            return model.model_validate(stored.response)
        result = work(conn)
        order_id = getattr(result, "work_order_id", getattr(result, "id", None))
        repo.store_response(conn, actor, key, order_id, result.model_dump(mode="json"))
        return result

    def _with_files(
        self,
        written: list[str],
        actor: str,
        key: str,
        operation: str,
        request: dict[str, Any],
        model: type[_R],
        work: Callable[[Connection[Any]], _R],
    ) -> _R:
        """:meth:`_run`, removing the files ``work`` wrote (listed in ``written``) when
        its transaction does not commit: no file without its row."""
        try:
            return self._run(actor, key, operation, request, model, work)
        except BaseException:
            for storage_key in written:
                self._photos.delete(storage_key)
            raise

    def _locked(
        self,
        conn: Connection[Any],
        work_order_id: int,
        actor_id: str,
        role: ActorRole,
        scope: Scope | None = None,
    ) -> WorkOrder:
        """The work order within ``scope`` (None: everywhere), locked; a MOSIE reaches
        only a job assigned to them."""
        assignee = actor_id if role is ActorRole.MOSIE else None
        order = repo.get_work_order(
            conn, work_order_id, scope or _EVERYWHERE, assignee=assignee, for_update=True
        )
        return _found(order, work_order_id)

    def _on_site(
        self, conn: Connection[Any], work_order_id: int, actor_id: str, scope: Scope | None
    ) -> WorkOrder:
        order = self._locked(conn, work_order_id, actor_id, ActorRole.MOSIE, scope)
        if order.status not in ON_SITE_STATES:
            raise ConflictError(f"work order {order.id} is {order.status}, not on site")
        return order

    def _progress(self, conn: Connection[Any], order: WorkOrder) -> ChecklistProgress | None:
        """The checklist of the current visit (None before the first arrival)."""
        if order.visits == 0:
            return None
        ticks = tuple(
            TaskTick(task_id=t.task_id, by=t.by, at=t.at, photo=t.photo_key, note=t.note)
            for t in repo.ticks(conn, order.id, order.visits)
        )
        return ChecklistProgress(checklist=self._checklists[order.type], ticks=ticks)

    def _announce(
        self, conn: Connection[Any], order: WorkOrder, audit: AuditRecord, actor: str
    ) -> None:
        payload = _payload(
            order,
            repo.gateway_ids(conn, order.site_id),
            audit.at,
            actor=actor,
            action=audit.action.value,
            from_status=audit.from_state.value,
        )
        booked = appt_repo.appointment(conn, order.id)
        if booked is not None:
            window = booked[0].window
            payload = payload.model_copy(
                update={"appointment_start": window.starts, "appointment_end": window.ends}
            )
        emit(
            conn, SCHEMA, _event(workorder_event_name(order.status.value), order, payload, audit.at)
        )


def _key_uuid(key: str) -> UUID:
    """A stable id of a policy's request (its idempotency key), kept beside its work order."""
    return uuid.uuid5(uuid.NAMESPACE_URL, key)


def _role(role: ActorRole | str) -> ActorRole:
    try:
        return ActorRole(role)
    except ValueError:
        raise RefusedError("role", "", f"unknown role {str(role)[:32]!r}") from None


def _reachable(
    conn: Connection[Any], work_order_id: int, scope: Scope, assignee: str | None
) -> WorkOrder:
    """The work order within ``scope`` (and ``assignee``'s, for a MOSIE), else
    :class:`NotFoundError` as for one that does not exist."""
    return _found(repo.get_work_order(conn, work_order_id, scope, assignee=assignee), work_order_id)


def _found(order: WorkOrder | None, work_order_id: int) -> WorkOrder:
    if order is None:
        raise NotFoundError(f"no work order {work_order_id}")
    return order


def _payload(
    order: WorkOrder,
    gateway_ids: Collection[str],
    at: datetime,
    *,
    actor: str,
    action: str | None = None,
    from_status: str | None = None,
) -> WorkOrderChanged:
    return WorkOrderChanged(
        work_order_id=order.id,
        region=order.region.value,
        site_id=order.site_id,
        gateway_ids=list(gateway_ids),
        account_id=order.account_id,
        type=order.type.value,
        priority=order.priority,
        title=order.title,
        status=order.status.value,
        from_status=from_status,
        action=action,
        actor=actor,
        at=at,
        assignee=order.assignee,
        on_site=order.status in ON_SITE_STATES,
        alarm_id=order.alarm_id,
        visits=order.visits,
        reopen_count=order.reopen_count,
        origin=order.origin,
        found_on=order.found_on,
        ticket_id=order.ticket_id,
    )


def _event(name: str, order: WorkOrder, payload: WorkOrderChanged, at: datetime) -> Event:
    return Event(
        name=name,
        region=order.region,
        source=SCHEMA,
        occurred_at=at,
        payload=payload.model_dump(mode="json"),
    )
