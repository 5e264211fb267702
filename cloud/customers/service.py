"""CustomersService: the customers service's published interface.

Every record lives in a region (an account's home region; a site's region) and every
call names it, so one region's API never reads or changes another's. Sites belong to the
registry and are named here by (region, site id); which account owns a site is the
registry's ``sites.account_id``, set by the composition (:func:`cloud.bootstrap.link_site`)
once :meth:`CustomersService.site_owner` has accepted the account.

Changes other services follow are emitted through ``customers.outbox`` in their own
transaction: ``customer.created`` / ``customer.updated`` (billing follows plans and
statuses) and ``site.meter_replaced`` (billing closes one register and opens the next).

It consumes support's ``ticket.plan_change_approved`` (:meth:`CustomersService.record_plan_change`):
the account owns its plan, so an approved change is recorded here with its date and
applied on that date (``customer.updated`` tells billing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from cloud.adapters.postgres import Connection, ConnectionPool, UniqueViolation, ping
from cloud.customers import repository as repo
from cloud.customers.errors import ConflictError, NotFoundError, RefusedError
from cloud.customers.models import (
    Account,
    AccountIn,
    AccountPatch,
    Contact,
    ContactIn,
    DeviceWarranty,
    Installation,
    InstallationIn,
    MeterReplacement,
    MeterReplacementIn,
    PlanChange,
    WarrantyIn,
)
from cloud.customers.validation import (
    check_account_patch,
    check_contact_count,
    check_installation,
    check_meter_replacement,
    check_site_owner,
)
from cloud.events.outbox import emit, handle_once
from cloud.events.support import PlanChangeApproved
from cloud.events.types import (
    CustomerAccount,
    InstallationChanged,
    MeterReplaced,
    customer_account_event,
    installation_changed_event,
    meter_replaced_event,
)
from cloud.scope import Scope
from cloud.search import SearchRefused, search_query
from contracts.timeutil import utc_now
from contracts.topics import Region

#: The customers service's PostgreSQL schema (and its outbox).
SCHEMA = "customers"


log = logging.getLogger(__name__)


def new_account_id() -> str:
    """``acc_`` + a uuid4's hex: unique across regions without asking any of them."""
    return f"acc_{uuid4().hex}"


class CustomersService:
    """Accounts, contacts, installation records, warranties and meter replacements;
    thread-safe (each call takes a pooled connection, one transaction per call)."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._pool = pool
        self._clock = clock

    def ping(self) -> None:
        ping(self._pool)

    # -- accounts -----------------------------------------------------------------------
    def add_account(self, region: Region, given: AccountIn) -> Account:
        """A new account at home in ``region``; :class:`ConflictError` when ``user_id``
        already signs in for another account."""
        with self._pool.connection() as conn:
            try:
                account = repo.insert_account(conn, new_account_id(), region, given)
            except UniqueViolation:
                raise ConflictError(f"user {given.user_id} already has an account") from None
            emit(conn, SCHEMA, customer_account_event(_payload(account), created=True))
            return account

    def get_account(
        self, account_id: str, region: Region | None = None, *, scope: Scope | None = None
    ) -> Account | None:
        """The account, or None (also when it is at home in another region than ``region``,
        or outside ``scope``, the portal's)."""
        with self._pool.connection() as conn:
            return repo.get_account(conn, account_id, scope=_scope(region, scope))

    def list_accounts(
        self,
        region: Region | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        scope: Scope | None = None,
    ) -> list[Account]:
        with self._pool.connection() as conn:
            return repo.list_accounts(conn, _scope(region, scope), limit, offset)

    def count_accounts(self, region: Region, before: Sequence[datetime]) -> list[int]:
        """``region``'s customers at each instant of ``before`` (in order): the accounts
        created before it and not closed now (no closing date is kept). Support's
        tickets per 1,000 customers."""
        with self._pool.connection() as conn:
            return repo.count_accounts(conn, region, before)

    def find_accounts(self, scope: Scope, text: str, limit: int = 20) -> list[Account]:
        """Accounts in ``scope`` whose name or email contains ``text`` (trimmed; any
        case; ``%`` and ``_`` match themselves), exact matches first: support's search.
        At most ``limit`` (1 to :data:`cloud.search.MAX_RESULTS`); :class:`RefusedError`
        for text that is empty or longer than :data:`cloud.search.MAX_TEXT_CHARS`."""
        try:
            query = search_query(text, limit)
        except SearchRefused as refused:
            raise RefusedError(refused.field, refused.limit, refused.reason) from None
        with self._pool.connection() as conn:
            return repo.find_accounts(conn, scope, query)

    def update_account(
        self,
        account_id: str,
        patch: AccountPatch,
        region: Region | None = None,
        *,
        scope: Scope | None = None,
    ) -> Account:
        """Change the fields ``patch`` sets (a closed account: none but ``status`` to
        closed again)."""
        with self._pool.connection() as conn:
            current = repo.get_account(
                conn, account_id, for_update=True, scope=_scope(region, scope)
            )
            if current is None:
                raise NotFoundError(f"account {account_id} does not exist")
            check_account_patch(current, patch)
            changes = patch.model_dump(include=patch.model_fields_set, mode="json")
            if not changes:
                return current
            try:
                account = repo.update_account(conn, account_id, changes)
            except UniqueViolation:
                raise ConflictError(f"user {patch.user_id} already has an account") from None
            emit(conn, SCHEMA, customer_account_event(_payload(account), created=False))
            return account

    # -- plan changes (support's approved change requests) ------------------------------
    def record_plan_change(self, event_id: UUID, change: PlanChangeApproved, today: date) -> bool:
        """An approved plan change, once per event: recorded with its date, and applied at
        once when that date is ``today`` or past (``customer.updated``: billing rates
        with the new plan from then on), else by :meth:`apply_due_plan_changes` on the
        day. False when handled before or the account is unknown in its region."""
        with self._pool.connection() as conn, conn.transaction():
            if not handle_once(conn, SCHEMA, event_id):
                return False
            scope = Scope.of_region(change.region)
            if repo.get_account(conn, change.account_id, for_update=True, scope=scope) is None:
                log.warning("plan change of ticket %d: no account %s in %s",
                            change.ticket_id, change.account_id, change.region.value)  # fmt: skip
                return False
            change_id = repo.insert_plan_change(
                conn, change.account_id, change.plan_code, change.effective_from,
                f"ticket:{change.ticket_id}", change.approved_by,
            )  # fmt: skip
            if change_id is not None and change.effective_from <= today:
                self._apply_plan(conn, change_id, change.account_id, change.plan_code)
            return True

    def apply_due_plan_changes(self, today: date) -> int:
        """Apply every recorded plan change whose date has come (the daily sweep); how many."""
        applied = 0
        with self._pool.connection() as conn:
            for change_id, account_id, plan_code in repo.due_plan_changes(conn, today):
                with conn.transaction():
                    if repo.get_account(conn, account_id, for_update=True) is None:
                        continue
                    self._apply_plan(conn, change_id, account_id, plan_code)
                    applied += 1
        return applied

    def list_plan_changes(self, account_id: str) -> list[PlanChange]:
        with self._pool.connection() as conn:
            return repo.plan_changes(conn, account_id)

    def region_plan_changes(self, region: Region) -> dict[str, list[PlanChange]]:
        """The plan changes of the region's accounts, per account id, by effective date
        (billing's plan histories, one query for a whole cycle)."""
        with self._pool.connection() as conn:
            return repo.region_plan_changes(conn, region)

    def _apply_plan(
        self, conn: Connection[Any], change_id: int, account_id: str, plan_code: str
    ) -> None:
        before = repo.get_account(conn, account_id)
        account = repo.update_account(conn, account_id, {"plan_code": plan_code})
        repo.mark_plan_applied(conn, change_id, before.plan_code if before else None)
        emit(conn, SCHEMA, customer_account_event(_payload(account), created=False))

    def site_owner(self, account_id: str, site_region: Region) -> Account:
        """The account, if it may own a site of ``site_region`` (its own region; not
        closed): the check before the registry records the link."""
        with self._pool.connection() as conn:
            account = repo.get_account(conn, account_id)
        if account is None:
            raise NotFoundError(f"account {account_id} does not exist")
        check_site_owner(account, site_region)
        return account

    # -- contacts -----------------------------------------------------------------------
    def add_contact(
        self, region: Region, account_id: str, given: ContactIn, *, scope: Scope | None = None
    ) -> Contact:
        with self._pool.connection() as conn:
            self._account(conn, _scope(region, scope), account_id, lock=True)  # counts exact
            check_contact_count(account_id, repo.count_contacts(conn, account_id))
            try:
                return repo.insert_contact(conn, account_id, given)
            except UniqueViolation:
                raise ConflictError(f"account {account_id} already has a primary contact") from None

    def list_contacts(
        self, region: Region, account_id: str, *, scope: Scope | None = None
    ) -> list[Contact]:
        with self._pool.connection() as conn:
            self._account(conn, _scope(region, scope), account_id)
            return repo.list_contacts(conn, account_id)

    def remove_contact(
        self, region: Region, account_id: str, contact_id: int, *, scope: Scope | None = None
    ) -> None:
        with self._pool.connection() as conn:
            self._account(conn, _scope(region, scope), account_id)
            if not repo.delete_contact(conn, account_id, contact_id):
                raise NotFoundError(f"account {account_id} has no contact {contact_id}")

    # -- installations ------------------------------------------------------------------
    def put_installation(
        self, region: Region, site_id: int, given: InstallationIn
    ) -> tuple[Installation, bool]:
        """Record or replace a site's installation record; (record, whether it is new).
        The billing meter of a stored record changes only by a meter replacement."""
        with self._pool.connection() as conn:
            current = repo.get_installation(conn, region, site_id, for_update=True)
            checked = check_installation(region, given, current)
            if current is not None:
                record = repo.update_installation(conn, region, site_id, checked)
                emit(conn, SCHEMA, installation_changed_event(_installation_payload(record)))
                return record, False
            try:
                record = repo.insert_installation(conn, region, site_id, checked)
            except UniqueViolation:
                raise ConflictError(
                    f"site {site_id}'s installation was recorded meanwhile: send it again"
                ) from None
            emit(conn, SCHEMA, installation_changed_event(_installation_payload(record)))
            return record, True

    def get_installation(self, region: Region, site_id: int) -> Installation | None:
        with self._pool.connection() as conn:
            return repo.get_installation(conn, region, site_id)

    def list_installations(
        self, region: Region, *, after_site: int = 0, limit: int = 1000
    ) -> list[Installation]:
        """The region's installation records by site id, from the first after
        ``after_site`` (keyset pages: billing walks a whole region)."""
        with self._pool.connection() as conn:
            return repo.list_installations(conn, region, after_site, limit)

    def announce_installations(self, region: Region, *, page: int = 500) -> int:
        """``site.installation_changed`` again for every record of the region (a page a
        transaction), as it is now: consumers that started keeping more of a record (the
        telemetry store's and alerts' meters) learn the records they missed. Consumers
        keep the newest record, so an announcement changes nothing they hold. The
        records announced."""
        announced, after = 0, 0
        while True:
            with self._pool.connection() as conn:
                records = repo.list_installations(conn, region, after, page)
                for record in records:
                    emit(conn, SCHEMA, installation_changed_event(_installation_payload(record)))
            if not records:
                return announced
            announced += len(records)
            after = records[-1].site_id

    # -- meter replacements -------------------------------------------------------------
    def record_meter_replacement(
        self, region: Region, site_id: int, given: MeterReplacementIn
    ) -> MeterReplacement:
        """Record a billing-meter swap with both registers, make the new meter the
        installation's billing meter and emit ``site.meter_replaced``, in one transaction."""
        with self._pool.connection() as conn:
            installation = self._installation(conn, region, site_id, lock=True)
            latest = repo.latest_replacement_at(conn, region, site_id)
            check_meter_replacement(installation, given, latest, self._clock())
            replacement = repo.insert_replacement(conn, region, site_id, given)
            repo.set_billing_meter(conn, region, site_id, given.new_serial)
            emit(conn, SCHEMA, meter_replaced_event(_replaced(replacement)))
            return replacement

    def list_meter_replacements(
        self, region: Region, site_id: int, *, limit: int = 100, offset: int = 0
    ) -> list[MeterReplacement]:
        """A site's swaps in time order; :class:`NotFoundError` without an installation."""
        with self._pool.connection() as conn:
            self._installation(conn, region, site_id)
            return repo.list_replacements(conn, region, site_id, limit, offset)

    def region_meter_replacements(self, region: Region) -> dict[int, list[MeterReplacement]]:
        """The swaps of the region's sites, per site id, in time order (billing's chain
        of billing meters, one query for a whole cycle)."""
        found: dict[int, list[MeterReplacement]] = {}
        with self._pool.connection() as conn:
            for replacement in repo.region_replacements(conn, region):
                found.setdefault(replacement.site_id, []).append(replacement)
        return found

    # -- device warranties --------------------------------------------------------------
    def put_warranty(
        self, region: Region, site_id: int, serial: str, given: WarrantyIn
    ) -> DeviceWarranty:
        with self._pool.connection() as conn:
            self._installation(conn, region, site_id)
            return repo.upsert_warranty(conn, region, site_id, serial, given)

    def list_warranties(
        self, region: Region, site_id: int, *, limit: int = 100, offset: int = 0
    ) -> list[DeviceWarranty]:
        with self._pool.connection() as conn:
            self._installation(conn, region, site_id)
            return repo.list_warranties(conn, region, site_id, limit, offset)

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _account(
        conn: Connection[Any], scope: Scope, account_id: str, *, lock: bool = False
    ) -> Account:
        account = repo.get_account(conn, account_id, for_update=lock, scope=scope)
        if account is None:
            where = f"region {scope.region.value}" if scope.region else "any region"
            raise NotFoundError(f"account {account_id} does not exist in {where}")
        return account

    @staticmethod
    def _installation(
        conn: Connection[Any],
        region: Region,
        site_id: int,
        *,
        lock: bool = False,
    ) -> Installation:
        found = repo.get_installation(conn, region, site_id, for_update=lock)
        if found is None:
            raise NotFoundError(f"site {site_id} ({region.value}) has no installation record")
        return found


def _scope(region: Region | None, scope: Scope | None) -> Scope:
    """The portal's ``scope`` when given, else ``region``'s (None: every account)."""
    if scope is not None:
        return scope
    return Scope.of_region(region) if region is not None else Scope.everything()


def _payload(account: Account) -> CustomerAccount:
    return CustomerAccount.model_validate({**account.model_dump(), "account_id": account.id})


def _replaced(replacement: MeterReplacement) -> MeterReplaced:
    return MeterReplaced.model_validate(
        {**replacement.model_dump(), "replacement_id": replacement.id}
    )


def _installation_payload(record: Installation) -> InstallationChanged:
    """What other services hear of an installation record (alerts: the array's
    geometry and size for the clear-sky expectation; the telemetry store: which meter
    is the grid's and which the system's)."""
    return InstallationChanged(
        site_id=record.site_id,
        region=record.region,
        pv_kwp=record.pv_kwp,
        tilt_deg=record.tilt_deg,
        azimuth_deg=record.azimuth_deg,
        battery_kwh=record.battery_kwh,
        updated_at=record.updated_at,
        billing_meter=record.billing_meter,
        grid_meter=record.grid_meter,
    )
