"""Events notify consumes: who can be told (``user.*`` from identity, ``customer.*`` from
the customers service, into :mod:`cloud.notify.recipients`) and what to tell them
(``alert.*`` from the alerts service, as notifications; ``workorder.*`` from dispatch,
planned in :mod:`cloud.notify.workorders`; ``part.*`` from dispatch's parts stock,
planned in :mod:`cloud.notify.parts`; billing's ``invoice.issued`` and
``invoice.overdue``, to the account's users, planned in :mod:`cloud.notify.invoices`;
support's ``ticket.resolved``, the outcome letter, planned in :mod:`cloud.notify.tickets`).

An alarm's event becomes at most two notifications, each to one audience:

* ``alert.raised`` that ``announce``\\ s (the alarm newly wants an operator; a raise
  while shelved, suppressed or out of service tells nobody): the region's operators and
  MOSIEs as its rule names them (``alarm_raised``), and the site's customer account's
  users when the rule names the customer — a **safety notice** (``isolator_open``,
  category ``safety``, urgent: it ignores quiet hours and is mailed whatever the
  preferences) when the rule says so, else ``alarm_raised``. A safety rule's staff
  notification is ``safety`` too: nobody's quiet hours hold a DC isolator open in
  daylight.
* ``alert.escalated``: the region's admins (the next tier), ``alarm_raised``.
* ``alert.cleared`` of an alarm the customer was told about (cleared from
  ``unacknowledged`` or ``acknowledged``, the rule naming the customer):
  ``alarm_cleared`` to the customer. Operators see clears on their board; mail about
  them would be noise (business.md §4).

Each notification's id is derived from the event's id and the audience, so a redelivered
event notifies nobody twice (notify's unique keys), and the event is recorded in
``notify.handled_events`` in the transaction that files the notifications. How long
after the alarm's change each notification was made is kept in
``notify.alarm_notifications`` (``latency_ms``).

:func:`event_subscriptions` gives the bus subscriptions the composition root registers.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.calendars import is_iana_zone
from cloud.events.alerts import (
    ALERT_CLEARED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    AlarmChanged,
    AlarmStatus,
    alarm_audiences,
)
from cloud.events.alerts import Severity as AlarmSeverity
from cloud.events.bus import PoisonEventError, Subscription, event_payload
from cloud.events.invoices import INVOICE_ISSUED, INVOICE_OVERDUE, InvoiceIssued, InvoiceOverdue
from cloud.events.outbox import Event, handle_once
from cloud.events.parts import PART_PREFIX, PartReorderNeeded
from cloud.events.support import TICKET_RESOLVED, TicketResolved
from cloud.events.types import CUSTOMER_CREATED, CUSTOMER_UPDATED, CustomerAccount
from cloud.events.users import (
    USER_CONTACT_CHANGED,
    USER_CREATED,
    USER_DISABLED,
    USER_ENABLED,
    USER_UPDATED,
    UserChanged,
    UserContact,
)
from cloud.events.workorders import WORKORDER_PREFIX, WorkOrderChanged
from cloud.notify import invoices as bills
from cloud.notify import parts as stock
from cloud.notify import recipients as people
from cloud.notify import tickets
from cloud.notify import workorders as jobs
from cloud.notify.models import Category, LocalText, Notification, Recipient, Severity
from cloud.notify.service import SCHEMA, NotificationService, NotifyError
from contracts.timeutil import utc_now
from contracts.topics import Region

__all__ = [
    "ACCOUNTS_CONSUMER",
    "ALARMS_CONSUMER",
    "INVOICES_CONSUMER",
    "PARTS_CONSUMER",
    "PEOPLE_CONSUMER",
    "TICKETS_CONSUMER",
    "WORKORDERS_CONSUMER",
    "AlarmNotice",
    "NotifyHandlers",
    "event_subscriptions",
    "plan_alarm_notices",
]

#: notify's queues (``potr.notify.*`` on RabbitMQ).
PEOPLE_CONSUMER = "notify.people"
ACCOUNTS_CONSUMER = "notify.accounts"
ALARMS_CONSUMER = "notify.alarms"
WORKORDERS_CONSUMER = "notify.workorders"
PARTS_CONSUMER = "notify.parts"
INVOICES_CONSUMER = "notify.invoices"
TICKETS_CONSUMER = "notify.tickets"
#: Where notify records the events it handled (``notify.inbox`` is people's inbox).
HANDLED_TABLE = "handled_events"
#: Namespace of notification ids derived from event ids.
_NOTIFICATION_NS = uuid.UUID("6c0b7f0e-6f1b-4a51-9d0e-2b8f4f3f1a16")
_USER_EVENTS = frozenset({USER_CREATED, USER_UPDATED, USER_DISABLED, USER_ENABLED})
_SEVERITY = {
    AlarmSeverity.LOW: Severity.INFO,
    AlarmSeverity.MEDIUM: Severity.WARNING,
    AlarmSeverity.HIGH: Severity.WARNING,
    AlarmSeverity.URGENT: Severity.URGENT,
}
#: States from which a clear ends an alarm the customer was told about.
_TOLD_STATES = frozenset({AlarmStatus.UNACKNOWLEDGED, AlarmStatus.ACKNOWLEDGED})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


# -- what to tell whom (pure) -----------------------------------------------------------
@dataclass(frozen=True)
class AlarmNotice:
    """One notification an alarm's event makes and whom it goes to: the users of
    ``account_id`` (``audience`` customer) or the region's people of ``roles``."""

    audience: str
    notification: Notification
    account_id: str | None = None
    roles: tuple[str, ...] = ()


def plan_alarm_notices(event: Event, alarm: AlarmChanged, now: datetime) -> list[AlarmNotice]:
    """The notifications of ``event`` (an ``alert.*`` event with payload ``alarm``) made
    at ``now``; empty for events that tell nobody (see the module)."""
    audiences = alarm_audiences(alarm.detail)
    region = event.region
    staff_roles = tuple(
        role for who, role in (("operators", "operator"), ("mosie", "mosie")) if who in audiences.to
    )
    to_customer = "customer" in audiences.to and alarm.account_id is not None
    safety = audiences.safety_notice
    site = _site(alarm)
    notices: list[AlarmNotice] = []

    def notice(
        audience: str, kind: str, category: Category, params: dict[str, Any], link: str
    ) -> Notification:
        return Notification(
            id=uuid.uuid5(_NOTIFICATION_NS, f"{event.id}/{audience}"),
            kind=kind,
            category=category,
            severity=Severity.URGENT if category is Category.SAFETY else _SEVERITY[alarm.severity],
            region=region,
            account_id=alarm.account_id,
            link=link,
            params={"site": site} | params,
            created_at=now,
        )

    # The portal's pages (cloud.portal.web): staff's alarm page, the customer's site page.
    staff_link = f"/ui/{region.value}/alarms/{alarm.alarm_id}"
    customer_link = f"/ui/{region.value}/sites/{alarm.site_id}"
    raised = {"alarm": _title(alarm), "raised_at": alarm.at}
    if event.name == ALERT_RAISED and alarm.announce:
        category = Category.SAFETY if safety else Category.ALARM
        if staff_roles:
            n = notice("staff", "alarm_raised", category, raised, staff_link)
            notices.append(AlarmNotice("staff", n, roles=staff_roles))
        if to_customer:
            if safety:
                n = notice(
                    "customer", "isolator_open", category, {"detected_at": alarm.at}, customer_link
                )
            else:
                n = notice("customer", "alarm_raised", category, raised, customer_link)
            notices.append(AlarmNotice("customer", n, account_id=alarm.account_id))
    elif event.name == ALERT_ESCALATED:
        n = notice("escalation", "alarm_raised", Category.ALARM, raised, staff_link)
        notices.append(AlarmNotice("escalation", n, roles=("admin",)))
    elif event.name == ALERT_CLEARED and to_customer and alarm.from_state in _TOLD_STATES:
        cleared = {"alarm": _title(alarm), "cleared_at": alarm.at}
        n = notice("customer", "alarm_cleared", Category.ALARM, cleared, customer_link)
        notices.append(AlarmNotice("customer", n, account_id=alarm.account_id))
    return notices


def _site(alarm: AlarmChanged) -> LocalText | str:
    """The site as people read it: its name when the alarm's detail gives one."""
    name = alarm.detail.get("site_name")
    if isinstance(name, str) and (clean := _CONTROL.sub(" ", name).strip()):
        return clean[:200]
    return LocalText(en=f"site {alarm.site_id}", es=f"instalación {alarm.site_id}")


def _title(alarm: AlarmChanged) -> str:
    return _CONTROL.sub(" ", alarm.title).strip()[:200] or alarm.rule_id


def _zone_hint(alarm: AlarmChanged) -> str | None:
    """The site's zone when the alarm's detail gives it: times in the customer's mail
    read on their clock until they choose a zone."""
    zone = alarm.detail.get("time_zone")
    return zone if isinstance(zone, str) and is_iana_zone(zone) else None


# -- handlers ---------------------------------------------------------------------------
class NotifyHandlers:
    """notify's event handlers (blocking work in threads). ``clock``: when a notification
    is made (the latency recorded is measured on it)."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        service: NotificationService,
        *,
        clock: Callable[[], datetime] = utc_now,
        on_filed: Callable[[], None] | None = None,
    ) -> None:
        self._pool = pool
        self._service = service
        self._clock = clock
        # Called (in the handler's loop) once an alarm's notifications are committed: the
        # delivery worker's wake-up, so mail leaves now rather than at its next idle check.
        self._on_filed = on_filed

    async def on_user(self, event: Event) -> None:
        if event.name == USER_CONTACT_CHANGED:
            contact = event_payload(event, UserContact)
            await asyncio.to_thread(self._once, event, people.save_contact, contact)
        elif event.name in _USER_EVENTS:
            person = event_payload(event, UserChanged)
            await asyncio.to_thread(self._once, event, people.save_person, person)

    async def on_customer(self, event: Event) -> None:
        if event.name in (CUSTOMER_CREATED, CUSTOMER_UPDATED):
            account = event_payload(event, CustomerAccount)
            await asyncio.to_thread(self._once, event, people.save_account, account)

    async def on_alarm(self, event: Event) -> None:
        if event.name not in (ALERT_RAISED, ALERT_ESCALATED, ALERT_CLEARED):
            return
        await self._file(self.notify_alarm, event, event_payload(event, AlarmChanged))

    async def on_workorder(self, event: Event) -> None:
        if not event.name.startswith(WORKORDER_PREFIX):
            return
        await self._file(self.notify_workorder, event, event_payload(event, WorkOrderChanged))

    async def on_part(self, event: Event) -> None:
        if not event.name.startswith(PART_PREFIX):
            return
        await self._file(self.notify_part, event, event_payload(event, PartReorderNeeded))

    async def on_ticket(self, event: Event) -> None:
        if event.name != TICKET_RESOLVED:
            return
        await self._file(self.notify_ticket, event, event_payload(event, TicketResolved))

    def notify_ticket(self, event: Event, payload: TicketResolved) -> int:
        """File the outcome letter of a resolved ticket (one transaction with its inbox
        row); the number of people told, 0 when handled before (:mod:`cloud.notify.tickets`)."""
        now = self._clock()
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event.id, table=HANDLED_TABLE):
                return 0
            notice = tickets.plan_ticket_notice(event, payload, now)
            if notice is None:
                return 0
            found = people.customers_of(conn, payload.region, [notice.account_id])
            reached = found.get(notice.account_id, [])
            if not reached:
                return 0
            return self._service.notify(notice.notification, reached, conn=conn).inbox_posted

    async def on_invoice(self, event: Event) -> None:
        payload: InvoiceIssued | InvoiceOverdue
        if event.name == INVOICE_ISSUED:
            payload = event_payload(event, InvoiceIssued)
        elif event.name == INVOICE_OVERDUE:
            payload = event_payload(event, InvoiceOverdue)
        else:
            return
        await self._file(self.notify_invoice, event, payload)

    async def _file(self, notify: Callable[[Event, Any], int], event: Event, payload: Any) -> None:
        """Run ``notify`` (one of the ``notify_*`` below) in a thread; a template that
        refuses the parameters will never accept them, so the event is poison. Then wakes
        the delivery worker (a wake-up with nothing queued costs one look at the queue;
        the count ``notify`` returns is inbox posts, not the mail and webhooks queued)."""
        try:
            await asyncio.to_thread(notify, event, payload)
        except NotifyError as exc:
            raise PoisonEventError(str(exc)) from exc
        if self._on_filed is not None:
            self._on_filed()

    def _once(
        self, event: Event, save: Callable[[Connection[Any], Any, datetime], None], payload: Any
    ) -> None:
        with self._pool.connection() as conn:
            if handle_once(conn, SCHEMA, event.id, table=HANDLED_TABLE):
                save(conn, payload, event.occurred_at)

    def notify_alarm(self, event: Event, alarm: AlarmChanged) -> int:
        """File the notifications of ``event`` (one transaction with its inbox row); the
        number of people told, 0 when the event was handled before."""
        now = self._clock()
        notices = plan_alarm_notices(event, alarm, now)
        told = 0
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event.id, table=HANDLED_TABLE):
                return 0
            for notice in notices:
                reached = self._recipients(conn, event.region, notice, _zone_hint(alarm))
                if not reached:
                    continue
                result = self._service.notify(notice.notification, reached, conn=conn)
                told += result.inbox_posted
                _record(conn, event, alarm, notice, len(reached), now)
        return told

    def notify_workorder(self, event: Event, order: WorkOrderChanged) -> int:
        """File the notifications of a ``workorder.*`` event (one transaction with its
        inbox row and notify's memory of the job's technician); the number of people
        told, 0 when the event was handled before (:mod:`cloud.notify.workorders`)."""
        now = self._clock()
        region = event.region
        told = 0
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event.id, table=HANDLED_TABLE):
                return 0
            remembered = jobs.last_assignee(conn, region.value, order.work_order_id)
            before = jobs.previous_technician(remembered, order)
            jobs.remember_assignee(conn, region.value, order)
            for notice in jobs.plan_workorder_notices(event, order, before, now):
                if notice.employee_no is not None:
                    reached = people.employee_of(conn, region, notice.employee_no)
                elif notice.account_id is not None:
                    found = people.customers_of(conn, region, [notice.account_id])
                    reached = found.get(notice.account_id, [])
                else:
                    reached = people.staff_of(conn, region, notice.roles)
                if reached:
                    result = self._service.notify(notice.notification, reached, conn=conn)
                    told += result.inbox_posted
        return told

    def notify_part(self, event: Event, part: PartReorderNeeded) -> int:
        """File the notifications of a ``part.*`` event (one transaction with its inbox
        row); the number of people told, 0 when the event was handled before
        (:mod:`cloud.notify.parts`)."""
        now = self._clock()
        told = 0
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event.id, table=HANDLED_TABLE):
                return 0
            for notice in stock.plan_part_notices(event, part, now):
                reached = people.staff_of(conn, event.region, notice.roles)
                if reached:
                    result = self._service.notify(notice.notification, reached, conn=conn)
                    told += result.inbox_posted
        return told

    def notify_invoice(self, event: Event, payload: InvoiceIssued | InvoiceOverdue) -> int:
        """File the customer's notification of a billing event (one transaction with its
        inbox row); the number of people told, 0 when the event was handled before
        (:mod:`cloud.notify.invoices`)."""
        now = self._clock()
        told = 0
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event.id, table=HANDLED_TABLE):
                return 0
            for notice in bills.plan_invoice_notices(event, payload, now):
                found = people.customers_of(conn, payload.region, [notice.account_id])
                reached = found.get(notice.account_id, [])
                if reached:
                    result = self._service.notify(notice.notification, reached, conn=conn)
                    told += result.inbox_posted
        return told

    @staticmethod
    def _recipients(
        conn: Connection[Any], region: Region, notice: AlarmNotice, zone: str | None
    ) -> list[Recipient]:
        if notice.account_id is None:
            return people.staff_of(conn, region, notice.roles)
        found = people.customers_of(conn, region, [notice.account_id]).get(notice.account_id, [])
        return [r.model_copy(update={"time_zone": zone}) for r in found] if zone else found


def _record(
    conn: Connection[Any],
    event: Event,
    alarm: AlarmChanged,
    notice: AlarmNotice,
    reached: int,
    now: datetime,
) -> None:
    conn.execute(
        "INSERT INTO notify.alarm_notifications (notification_id, event_id, event_name,"
        " region, alarm_id, rule_id, audience, recipients, alarm_at, notified_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (notification_id) DO NOTHING",
        (
            notice.notification.id,
            event.id,
            event.name,
            event.region.value,
            alarm.alarm_id,
            alarm.rule_id,
            notice.audience,
            reached,
            alarm.at,
            now,
        ),
    )


def event_subscriptions(handlers: NotifyHandlers) -> list[Subscription]:
    """notify's subscriptions, every region: people (identity), accounts (customers),
    alarms (alerts), work orders and parts reorders (dispatch), documents and overdue
    reminders (billing), resolved tickets (support)."""
    return [
        Subscription(PEOPLE_CONSUMER, "*.identity.user.*", handlers.on_user),
        Subscription(ACCOUNTS_CONSUMER, "*.customers.customer.*", handlers.on_customer),
        Subscription(ALARMS_CONSUMER, "*.alerts.alert.*", handlers.on_alarm),
        Subscription(WORKORDERS_CONSUMER, "*.dispatch.workorder.*", handlers.on_workorder),
        Subscription(PARTS_CONSUMER, "*.dispatch.part.*", handlers.on_part),
        Subscription(INVOICES_CONSUMER, "*.billing.invoice.*", handlers.on_invoice),
        Subscription(TICKETS_CONSUMER, f"*.support.{TICKET_RESOLVED}", handlers.on_ticket),
    ]
