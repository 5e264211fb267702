"""The portal's one authorisation policy, as data and pure functions (no I/O).

Two questions, asked of every regional route by one dependency (:mod:`cloud.portal.auth`):

* **may this role call this route?** — :data:`ROUTES` (route key → roles); no → 403.
  A route key is the route's OpenAPI ``operationId``.
* **what may it reach?** — :func:`scope_for`: admins everything, operators, support and
  MOSIEs their region (of work orders only those assigned to them: the dispatch routes
  narrow by the employee number their token carries), customers the sites of their
  account. A regional URL outside it, or an object outside it, answers 404 (the
  object is not there *for this caller*), so ids cannot be probed.

The caller is anything with the fields of :class:`Caller` — identity's ``Principal``
has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cloud.identity import Role
from cloud.scope import Scope
from contracts.topics import Region

__all__ = [
    "ADMINS",
    "ALARM_OPERATORS",
    "ALARM_READERS",
    "ALL_REGIONS",
    "CONTROL",
    "CUSTOMER_READERS",
    "EVERYONE",
    "FLEET_WRITERS",
    "MOSIES",
    "OFFICE",
    "OFFICE_WRITERS",
    "ROUTES",
    "STAFF",
    "WORKORDER_ACTORS",
    "WORKORDER_READERS",
    "Caller",
    "CallerData",
    "may_call",
    "regional_scope",
    "scope_for",
]


class Caller(Protocol):
    """Who a verified token speaks for (the fields of ``cloud.identity.Principal``)."""

    @property
    def subject(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def region(self) -> Region: ...
    @property
    def account_id(self) -> str | None: ...
    @property
    def scopes(self) -> frozenset[str]: ...
    @property
    def employee_no(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class CallerData:
    """A :class:`Caller` as plain data (tokens decoded here, tests)."""

    subject: str
    role: Role
    region: Region
    account_id: str | None = None
    employee_no: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    token_id: str = ""


EVERYONE = frozenset(Role)
#: Who changes the fleet: sites and gateways.
FLEET_WRITERS = frozenset({Role.ADMIN, Role.OPERATOR})
#: Who reaches the config service (commands and configs write to devices; reads too).
CONTROL = frozenset({Role.ADMIN, Role.OPERATOR})

#: Who reads what a customer may see of its own account (contacts, installation, meter
#: replacements, warranties): the office staff, and the customer (scoped to its account).
CUSTOMER_READERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT, Role.CUSTOMER})
#: Who reads the office's records (every account of a region; staff records).
OFFICE = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT})
#: Who changes them (customers' records and staff records).
OFFICE_WRITERS = frozenset({Role.ADMIN, Role.OPERATOR})
ADMINS = frozenset({Role.ADMIN})
#: Who reads a region's alarm board and an alarm's history: the staff (MOSIEs to know
#: what waits at a site, support to answer a customer's call); customers see their
#: sites' alarms among the site page's notices instead.
ALARM_READERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT, Role.MOSIE})
#: Who acknowledges, shelves and unshelves alarms: the operator's desk (ISA-18.2's
#: operator response).
ALARM_OPERATORS = frozenset({Role.ADMIN, Role.OPERATOR})
#: Who reads work orders: staff (a MOSIE their own jobs only) and customers (their
#: account's, without the office's history, ticks, photos and notes).
WORKORDER_READERS = EVERYONE
#: Who takes lifecycle actions: the operator's desk and the assigned MOSIE.
WORKORDER_ACTORS = frozenset({Role.ADMIN, Role.OPERATOR, Role.MOSIE})
#: What only the technician's phone records on site (the assigned MOSIE's own job).
MOSIES = frozenset({Role.MOSIE})
#: Who confirms or reschedules a customer's visit: the customer, or the office for them.
APPOINTMENT_BOOKERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT, Role.CUSTOMER})
#: A customer's own pages (its account's visits).
CUSTOMERS = frozenset({Role.CUSTOMER})
#: The two ends of a visit: the job's customer and its MOSIE.
DOOR_CHECKERS = frozenset({Role.CUSTOMER, Role.MOSIE})
#: Support's desk: who works tickets (operators read the queue, not act on it).
SUPPORT_DESK = frozenset({Role.ADMIN, Role.SUPPORT})
#: Who raises and replies on tickets: the desk, and a customer (its own account's).
TICKET_WRITERS = frozenset({Role.ADMIN, Role.SUPPORT, Role.CUSTOMER})
#: Staff: who writes notes, sees job photos and the parts stock (a MOSIE: own jobs).
STAFF = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT, Role.MOSIE})

#: Who reads the reports of the fleet, its alarms and the technicians' work (issue 20):
#: the operators' desk runs these every day. Money (revenue, billed energy, savings) is
#: the admins' alone (:data:`ADMINS`).
REPORT_READERS = frozenset({Role.ADMIN, Role.OPERATOR})
#: Who reads a report across every region (``reports.all``): the roles whose scope is
#: every region (:func:`scope_for`), today the admins alone; anyone else gets 403.
ALL_REGIONS = frozenset({Role.ADMIN})
#: Who reads support's figures (SLA attainment, tickets per 1,000 customers): the
#: office — support's desk works to them, operators and admins watch them.
SUPPORT_FIGURES = OFFICE

#: Route key (the route's ``operationId``) → roles that may call it. A route missing
#: here cannot be built (its dependency raises ``KeyError``).
ROUTES: Mapping[str, frozenset[Role]] = {
    "sites.list": EVERYONE,
    "sites.get": EVERYONE,
    "sites.create": FLEET_WRITERS,
    "gateways.list": EVERYONE,
    "gateways.get": EVERYONE,
    "gateways.create": FLEET_WRITERS,
    "devices.list": EVERYONE,
    "devices.get": EVERYONE,
    "devices.readings": EVERYONE,
    "sites.readings": EVERYONE,
    "sites.latest": EVERYONE,
    "sites.energy": EVERYONE,
    "fleet.latest": EVERYONE,
    "devices.completeness": EVERYONE,
    "commands.send": CONTROL,
    "commands.get": CONTROL,
    "commands.list": CONTROL,
    "config.set": CONTROL,
    "config.get": CONTROL,
    "config.rollback": CONTROL,
    "config.audit": CONTROL,
    "rollouts.create": CONTROL,
    "rollouts.list": CONTROL,
    "rollouts.get": CONTROL,
    "rollouts.pause": CONTROL,
    "rollouts.resume": CONTROL,
    "rollouts.abort": CONTROL,
    "rollouts.rollback": CONTROL,
    "grid_code.get": CONTROL,
    "connection_approval.set": CONTROL,
    # customers
    "accounts.list": OFFICE,
    "accounts.get": CUSTOMER_READERS,
    "accounts.create": OFFICE_WRITERS,
    "accounts.update": OFFICE_WRITERS,
    "contacts.list": CUSTOMER_READERS,
    "contacts.create": OFFICE_WRITERS,
    "contacts.delete": OFFICE_WRITERS,
    "installations.get": CUSTOMER_READERS,
    "installations.put": OFFICE_WRITERS,
    "meter_replacements.list": CUSTOMER_READERS,
    "meter_replacements.create": OFFICE_WRITERS,
    "warranties.list": CUSTOMER_READERS,
    "warranties.put": OFFICE_WRITERS,
    # employees (staff of the URL's region) and the business calendar
    "employees.list": OFFICE,
    "employees.get": OFFICE,
    "employees.available": OFFICE,
    "employees.create": OFFICE_WRITERS,
    "employees.update": OFFICE_WRITERS,
    # The badge photo a customer is shown of the MOSIE at the door: admins set it.
    "employees.photo.put": ADMINS,
    "licences.create": OFFICE_WRITERS,
    "licences.delete": OFFICE_WRITERS,
    "absences.list": OFFICE,
    "absences.create": OFFICE_WRITERS,
    "absences.delete": OFFICE_WRITERS,
    "calendar.business_days": EVERYONE,
    # dispatch (issue 17): work orders, the MOSIE app, parts, performance
    "workorders.create": OFFICE_WRITERS,
    "workorders.list": WORKORDER_READERS,
    "workorders.get": WORKORDER_READERS,
    "workorders.act": WORKORDER_ACTORS,
    # charging the customer for a job (issue 19): its MOSIE, or the dispatch desk
    "workorders.charge": WORKORDER_ACTORS,
    "appointments.get": WORKORDER_READERS,
    "appointments.confirm": APPOINTMENT_BOOKERS,
    "appointments.reschedule": APPOINTMENT_BOOKERS,
    "jobs.mine": MOSIES,
    "checklist.tick": MOSIES,
    "notes.create": STAFF,
    "photos.create": MOSIES,
    "photos.get": STAFF,
    # The door code (issue 20): the job's customer and its MOSIE, in SQL (dispatch).
    "workorders.door_code": DOOR_CHECKERS,
    "parts_used.create": MOSIES,
    "signatures.create": MOSIES,
    "parts.list": STAFF,
    "parts.create": ADMINS,
    # the stock's money: the office's desk (admins and operators), as its page
    "parts.value": OFFICE_WRITERS,
    "performance.get": WORKORDER_ACTORS,
    "incidents.create": MOSIES,
    "location.record": MOSIES,
    "location_notice.get": MOSIES,
    "location_notice.acknowledge": MOSIES,
    "location_notice.withdraw": MOSIES,
    # billing (issue 19): read-only; a customer its own account, staff their region's
    "billing.documents.list": CUSTOMER_READERS,
    "billing.documents.get": CUSTOMER_READERS,
    "billing.documents.pdf": CUSTOMER_READERS,
    "billing.balance.get": CUSTOMER_READERS,
    "billing.payments.list": CUSTOMER_READERS,
    # billing cycles (issue 19): admins start them; the operators' desk follows them
    "billing.cycles.list": OFFICE_WRITERS,
    "billing.cycles.get": OFFICE_WRITERS,
    "billing.cycles.start": ADMINS,
    # support tickets (issue 20): scoped in SQL (a customer: its account's tickets)
    "support.tickets.list": CUSTOMER_READERS,
    "support.ticket_rates": SUPPORT_FIGURES,
    "support.tickets.create": TICKET_WRITERS,
    "support.tickets.get": CUSTOMER_READERS,
    "support.tickets.reply": TICKET_WRITERS,
    "support.tickets.reopen": CUSTOMERS,
    "support.tickets.assign": SUPPORT_DESK,
    "support.tickets.move": SUPPORT_DESK,
    "support.tickets.approve": SUPPORT_DESK,
    "support.tickets.work_order": SUPPORT_DESK,
    # privacy requests (issue 20 point 6): staff carry them out, the customer downloads
    "support.tickets.privacy_export": SUPPORT_DESK,
    "support.tickets.privacy_export_download": CUSTOMER_READERS,
    "support.tickets.erasure": SUPPORT_DESK,
    # web UI pages (cloud/portal/web): the same policy, the same scopes
    "ui.sites": EVERYONE,
    "ui.site": EVERYONE,
    "ui.site.live": EVERYONE,
    "ui.site.today": EVERYONE,
    "ui.site.energy": EVERYONE,
    "ui.fleet": FLEET_WRITERS,
    "ui.gateway": CONTROL,
    "ui.gateway.command": CONTROL,
    # grid-code profiles and staged rollouts (issue 18): the control desk's
    "ui.grid_codes": CONTROL,
    "ui.grid_code": CONTROL,
    "ui.grid_codes.diff": CONTROL,
    "ui.rollouts": CONTROL,
    "ui.rollout": CONTROL,
    "ui.rollout.events": CONTROL,
    "ui.rollout.act": CONTROL,
    "ui.support.search": OFFICE,
    "ui.support.customer": OFFICE,
    "ui.support.site": OFFICE,
    "ui.support.site.live": OFFICE,
    "ui.support.site.today": OFFICE,
    "ui.support.site.energy": OFFICE,
    "ui.audit": ADMINS,
    "ui.alarms": ALARM_READERS,
    "ui.alarm": ALARM_READERS,
    "ui.alarm.acknowledge": ALARM_OPERATORS,
    "ui.alarm.shelve": ALARM_OPERATORS,
    "ui.alarm.unshelve": ALARM_OPERATORS,
    # dispatch: the MOSIE's phone screens, the operators' board, a job's page (issue 17)
    "ui.jobs": MOSIES,
    "ui.visits": CUSTOMERS,
    # A customer's account at a glance (issue 20): the IVR's questions, self-served.
    "ui.overview": CUSTOMERS,
    # bills (issue 19): a customer's own; support's audited read-only view of a customer's
    "ui.bills": CUSTOMERS,
    "ui.bill": CUSTOMERS,
    "ui.bill.pdf": CUSTOMERS,
    "ui.support.bills": OFFICE,
    "ui.support.bill": OFFICE,
    "ui.support.bill.pdf": OFFICE,
    "ui.dispatch": OFFICE_WRITERS,
    "ui.dispatch.events": OFFICE_WRITERS,
    "ui.performance": WORKORDER_ACTORS,
    # the region's parts stock, valued, with what to reorder (issue 19)
    "ui.parts": OFFICE_WRITERS,
    "ui.parts.update": ADMINS,
    # billing cycles: started by admins, followed by admins and operators (issue 19)
    "ui.billing.cycles": OFFICE_WRITERS,
    "ui.billing.cycles.start": ADMINS,
    "ui.billing.cycle": OFFICE_WRITERS,
    "ui.billing.cycle.progress": OFFICE_WRITERS,
    "ui.workorder": WORKORDER_READERS,
    "ui.workorder.act": WORKORDER_ACTORS,
    "ui.workorder.charge": WORKORDER_ACTORS,
    "ui.workorder.tick": MOSIES,
    "ui.workorder.note": STAFF,
    "ui.workorder.photo": MOSIES,
    "ui.workorder.photo_get": STAFF,
    # Who is at the door: the job's customer and its MOSIE only (dispatch narrows to the
    # job's account or assignee in SQL; staff reach reads no door code).
    "ui.workorder.door": DOOR_CHECKERS,
    "ui.workorder.door_photo": DOOR_CHECKERS,
    "ui.workorder.part": MOSIES,
    "ui.workorder.sign": MOSIES,
    "ui.workorder.appointment": APPOINTMENT_BOOKERS,
    "ui.workorder.reschedule": APPOINTMENT_BOOKERS,
    "ui.workorder.incident": MOSIES,
    "ui.workorder.grid_code": MOSIES,
    "ui.location_notice": MOSIES,
    "ui.location_notice.acknowledge": MOSIES,
    "ui.location_notice.withdraw": MOSIES,
    "ui.location.control": MOSIES,
    "ui.location.record": MOSIES,
    # support tickets (issue 20): a customer's own; the region's queue for staff
    "ui.support.tickets": CUSTOMER_READERS,
    "ui.support.tickets.new": CUSTOMERS,
    "ui.support.tickets.create": CUSTOMERS,
    "ui.support.ticket": CUSTOMER_READERS,
    "ui.support.ticket.reply": TICKET_WRITERS,
    "ui.support.ticket.reopen": CUSTOMERS,
    "ui.support.ticket.act": SUPPORT_DESK,
    "ui.support.ticket.export": CUSTOMER_READERS,
    # the signed-in person's own inbox (any region URL they may reach)
    "ui.inbox": EVERYONE,
    "ui.inbox.events": EVERYONE,
    "ui.inbox.read": EVERYONE,
    "ui.inbox.read_all": EVERYONE,
    # reports (issue 20 point 4): operators the fleet, alerts and MOSIE ones; admins all
    "reports.fleet": REPORT_READERS,
    "reports.alerts": REPORT_READERS,
    "reports.mosie": REPORT_READERS,
    "reports.revenue": ADMINS,
    "reports.support": SUPPORT_FIGURES,
    # the index: each role sees the reports it may open (support: its own alone)
    "ui.reports": REPORT_READERS | SUPPORT_FIGURES,
    "ui.reports.fleet": REPORT_READERS,
    "ui.reports.alerts": REPORT_READERS,
    "ui.reports.mosie": REPORT_READERS,
    "ui.reports.revenue": ADMINS,
    # across the regions (issue 20 point 4): every report, for every-region scopes only
    "reports.all": ALL_REGIONS,
    "ui.reports.all": ALL_REGIONS,
    "ui.reports.support": SUPPORT_FIGURES,
}


def may_call(role: Role, route: str) -> bool:
    """Whether ``role`` may call route ``route``; ``KeyError`` for a route not in
    :data:`ROUTES` (a route nobody listed is a bug, not an open door)."""
    return role in ROUTES[route]


def regional_scope(caller: Caller, region: Region, api_region: Region | None) -> Scope | str:
    """The caller's scope inside a regional URL's ``region``, or why nothing is there for
    them (404 for the API and the web UI alike): a region this process does not serve
    (``api_region``; None: every region), or one outside the caller's reach."""
    if api_region is not None and region != api_region:
        return f"region {region.value!r} is not served here"
    scope = scope_for(caller).within(region)
    return scope if scope is not None else f"nothing in {region.value!r}"


def scope_for(caller: Caller) -> Scope:
    """Everything the caller may reach, before the URL's region narrows it."""
    if caller.role == Role.ADMIN:
        return Scope.everything()
    if caller.role == Role.CUSTOMER:
        return Scope.of_account(caller.region, caller.account_id)
    return Scope.of_region(caller.region)
