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
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError

from cloud.adapters.postgres import Connection, ConnectionPool, ping
from cloud.dispatch import repository as repo
from cloud.dispatch.checklists import ChecklistProgress, Checklists, TaskTick, load_checklists
from cloud.dispatch.errors import (
    ConflictError,
    NotFoundError,
    RefusedError,
    TickRefused,
    TransitionRefused,
)
from cloud.dispatch.lifecycle import (
    ACTIVE_STATES,
    ON_SITE_STATES,
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
    HistoryEntry,
    IdempotencyKey,
    KnownSite,
    Note,
    NoteText,
    PartNo,
    PartStock,
    PartUse,
    Performance,
    Photo,
    Signature,
    SignerName,
    Tick,
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
from cloud.events.outbox import Event, emit, handle_once
from cloud.events.types import GatewayRegistration
from cloud.events.workorders import WORKORDER_CREATED, WorkOrderChanged, workorder_event_name
from cloud.scope import Scope
from contracts.signing import canonical_bytes
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = ["MAX_PAGE", "SCHEMA", "DispatchService"]

#: The dispatch service's PostgreSQL schema (and its outbox).
SCHEMA = "dispatch"
#: The largest list a read returns.
MAX_PAGE = 500
#: Who acts for the system (telemetry verification, SLA timers) in history and keys.
SYSTEM_ACTOR = "system"
#: Most parts one use may take.
MAX_PARTS = 1000
_EVERYWHERE = Scope.everything()
_R = TypeVar("_R", bound=BaseModel)
_Pool = ConnectionPool[Connection[Any]]


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


def _fingerprint(operation: str, request: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes({"op": operation, **request})).hexdigest()


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
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._photos = photos
        self._checklists = checklists if checklists is not None else load_checklists()
        self._max_photo_bytes = max_photo_bytes

    @property
    def max_photo_bytes(self) -> int:
        """The largest photo (or signature image) accepted, in bytes."""
        return self._max_photo_bytes

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
            return True

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

    def _create(self, conn: Connection[Any], given: WorkOrderIn, role: ActorRole) -> WorkOrder:
        site = repo.get_site(conn, given.site_id)
        if site is None or site.region != given.region:
            raise NotFoundError(f"no site {given.site_id} in {given.region}")
        at = self._clock()
        order = repo.insert_work_order(conn, given, site.account_id, at)
        repo.insert_created(conn, order, given.created_by, role.value, at)
        payload = _payload(order, site.gateway_ids, at, actor=given.created_by)
        emit(conn, SCHEMA, _event(WORKORDER_CREATED, order, payload, at))
        return order

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
                sla_timer=timer,
            )
            result = transition(order.state(), action, role, context)
            if isinstance(result, Refusal):
                raise TransitionRefused(result)
            after = repo.update_state(conn, order.id, result.order, at)
            repo.insert_history(conn, order.id, result.audit, actor_id, after.resolve_by)
            self._announce(conn, after, result.audit, actor_id)
            return after

        return self._run(actor_id, idempotency_key, "act", request, WorkOrder, work)

    def set_due(
        self, work_order_id: int, *, arrive_by: datetime | None, resolve_by: datetime | None
    ) -> WorkOrder:
        """Store the SLA due times (computed on the region's business calendar elsewhere)."""
        with self._pool.connection() as conn:
            order = repo.set_due(conn, work_order_id, arrive_by, resolve_by, self._clock())
            if order is None:
                raise NotFoundError(f"no work order {work_order_id}")
            return order

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
            left = repo.take_part(conn, order.region, part.part_no, part.quantity, at)
            if left is None:
                have = repo.in_stock(conn, order.region, part.part_no)
                if have is None:
                    raise NotFoundError(f"no part {part.part_no} in the {order.region} stock")
                raise ConflictError(
                    f"only {have} of {part.part_no} in the {order.region} stock,"
                    f" {part.quantity} asked"
                )
            return repo.insert_part_use(
                conn, order.id, order.region, part.part_no, part.quantity, actor_id, at, left
            )

        return self._run(actor_id, idempotency_key, "part", request, PartUse, work)

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

    # -- parts stock ------------------------------------------------------------------------
    def add_stock(
        self, region: Region, part_no: str, quantity: int, description: str | None = None
    ) -> PartStock:
        """``quantity`` (≥ 1) more of ``part_no`` in ``region``'s stock."""
        part = _valid(_PartIn, part_no=part_no, quantity=quantity)
        if part.quantity < 1:
            raise RefusedError("quantity", ">= 1", f"{quantity} parts")
        with self._pool.connection() as conn:
            return repo.add_stock(
                conn, region, part.part_no, part.quantity, description, self._clock()
            )

    def stock(self, region: Region) -> list[PartStock]:
        with self._pool.connection() as conn:
            return repo.stock(conn, region)

    # -- reads --------------------------------------------------------------------------------
    def get(self, work_order_id: int, scope: Scope, *, assignee: str | None = None) -> WorkOrder:
        """The work order within ``scope`` (``assignee``: a MOSIE's, only their own jobs);
        :class:`NotFoundError` otherwise, as for one that does not exist."""
        with self._pool.connection() as conn:
            return _found(
                repo.get_work_order(conn, work_order_id, scope, assignee=assignee), work_order_id
            )

    def history(
        self, work_order_id: int, scope: Scope, *, assignee: str | None = None
    ) -> list[HistoryEntry]:
        with self._pool.connection() as conn:
            _found(
                repo.get_work_order(conn, work_order_id, scope, assignee=assignee), work_order_id
            )
            return repo.history(conn, work_order_id)

    def ticks(self, work_order_id: int, scope: Scope, *, assignee: str | None = None) -> list[Tick]:
        """The checklist ticks of the job's current visit."""
        with self._pool.connection() as conn:
            order = _found(
                repo.get_work_order(conn, work_order_id, scope, assignee=assignee), work_order_id
            )
            return repo.ticks(conn, order.id, order.visits)

    def photos(
        self, work_order_id: int, scope: Scope, *, assignee: str | None = None
    ) -> list[Photo]:
        with self._pool.connection() as conn:
            _found(
                repo.get_work_order(conn, work_order_id, scope, assignee=assignee), work_order_id
            )
            return repo.photos(conn, work_order_id)

    def notes(self, work_order_id: int, scope: Scope, *, assignee: str | None = None) -> list[Note]:
        with self._pool.connection() as conn:
            _found(
                repo.get_work_order(conn, work_order_id, scope, assignee=assignee), work_order_id
            )
            return repo.notes(conn, work_order_id)

    def photo_content(
        self, work_order_id: int, photo_id: int, scope: Scope, *, assignee: str | None = None
    ) -> tuple[Photo, bytes]:
        """A photo of a job within reach and its bytes; :class:`NotFoundError` for a job
        or photo not there (or bytes the storage lost)."""
        with self._pool.connection() as conn:
            _found(
                repo.get_work_order(conn, work_order_id, scope, assignee=assignee), work_order_id
            )
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
        limit: int = MAX_PAGE,
        offset: int = 0,
    ) -> list[WorkOrder]:
        """The region's work orders in ``statuses`` (default: every active one) within
        ``scope`` (default: the whole region), the most urgent first; ``assignee``,
        ``site_id``: only one technician's, one site's; a page of at most ``limit``
        (≤ :data:`MAX_PAGE`) after ``offset``."""
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
                limit=limit,
                offset=offset,
            )

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
        emit(
            conn, SCHEMA, _event(workorder_event_name(order.status.value), order, payload, audit.at)
        )


def _role(role: ActorRole | str) -> ActorRole:
    try:
        return ActorRole(role)
    except ValueError:
        raise RefusedError("role", "", f"unknown role {str(role)[:32]!r}") from None


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
    )


def _event(name: str, order: WorkOrder, payload: WorkOrderChanged, at: datetime) -> Event:
    return Event(
        name=name,
        region=order.region,
        source=SCHEMA,
        occurred_at=at,
        payload=payload.model_dump(mode="json"),
    )
