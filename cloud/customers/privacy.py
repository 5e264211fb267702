"""The customers service's part of a privacy request: the account row, its contacts, its
plan history and the installations of its sites (the array, the meters, warranties,
meter replacements) out; on erasure the contacts deleted and the account's name and email
pseudonymised, the account closed and unlinked from its sign-in user — announced as
``customer.updated`` in the same transaction, so the services that copy the account
(notify, SAP's business partner) take the erased values as any change. The account row
and its plan changes stay under the opaque account id: billing's kept invoices refer to
it, and a plan is a term of the contract, not a fact about the person. The installation
records stay too: they describe PoTR's equipment on the site, not the person. Customers
knows which sites an account owns only as the registry says: the composition root gives
it the account's sites."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.customers import repository as repo
from cloud.events.outbox import emit
from cloud.events.types import CustomerAccount, customer_account_event
from cloud.personal_data import Erasure, Export, pseudonym
from contracts.topics import Region

__all__ = ["CustomersPersonalData"]

#: The account's sites in a region (the registry's answer).
SitesOf = Callable[[Region, str], Sequence[int]]
#: What an export holds of the account's sites (``%s``: region, then the site ids).
_SITE_TABLES = {
    "installations": "SELECT site_id, pv_kwp, tilt_deg, azimuth_deg, battery_kwh,"
    " network_operator, tariff_zone, installed_on, warranty_until, billing_meter"
    " FROM customers.installations WHERE region = %s AND site_id = ANY(%s) ORDER BY site_id",
    "warranties": "SELECT site_id, serial, kind, warranty_until FROM customers.device_warranties"
    " WHERE region = %s AND site_id = ANY(%s) ORDER BY site_id, serial",
    "meter_replacements": "SELECT site_id, old_serial, new_serial, replaced_at,"
    " old_register_kwh, new_register_kwh FROM customers.meter_replacements"
    " WHERE region = %s AND site_id = ANY(%s) ORDER BY id",
}

#: Where an erased account's email points: a reserved domain that delivers nowhere.
ERASED_EMAIL = "erased+{id}@invalid.example"


class CustomersPersonalData:
    service = "customers"

    def __init__(self, pool: ConnectionPool[Connection[Any]], sites_of: SitesOf) -> None:
        self._pool = pool
        self._sites_of = sites_of

    def export(self, region: Region, account_id: str) -> Export:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            accounts = cur.execute(
                "SELECT id, region, name, email, plan_code, status, user_id, created_at,"
                " updated_at FROM customers.accounts WHERE id = %s AND region = %s",
                (account_id, region.value),
            ).fetchall()
            if not accounts:
                return {"account": [], "contacts": [], "plan_changes": []}
            sites = list(self._sites_of(region, account_id))
            contacts = cur.execute(
                'SELECT id, name, email, phone, role, "primary", created_at'
                " FROM customers.contacts WHERE account_id = %s ORDER BY id",
                (account_id,),
            ).fetchall()
            plans = cur.execute(
                "SELECT plan_code, effective_from, source, recorded_at, applied_at"
                " FROM customers.plan_changes WHERE account_id = %s ORDER BY id",
                (account_id,),
            ).fetchall()
        share: Export = {"account": accounts, "contacts": contacts, "plan_changes": plans}
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            for kind, sql in _SITE_TABLES.items():
                share[kind] = cur.execute(sql, (region.value, sites)).fetchall()
        return share

    def erase(self, region: Region, account_id: str) -> Erasure:
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT name FROM customers.accounts WHERE id = %s AND region = %s FOR UPDATE",
                (account_id, region.value),
            ).fetchone()
            if row is None:
                return Erasure(self.service)
            contacts = conn.execute(
                "DELETE FROM customers.contacts WHERE account_id = %s", (account_id,)
            ).rowcount
            already = row[0] == pseudonym(account_id)
            conn.execute(
                "UPDATE customers.accounts SET name = %s, email = %s, status = 'closed',"
                " user_id = NULL, updated_at = now() WHERE id = %s",
                (pseudonym(account_id), ERASED_EMAIL.format(id=account_id), account_id),
            )
            if not already:
                account = repo.get_account(conn, account_id)
                assert account is not None, "locked above"
                payload = CustomerAccount.model_validate(
                    {**account.model_dump(), "account_id": account.id}
                )
                emit(conn, "customers", customer_account_event(payload, created=False))
            plans = conn.execute(
                "SELECT count(*) FROM customers.plan_changes WHERE account_id = %s",
                (account_id,),
            ).fetchone()
            installations = conn.execute(
                "SELECT count(*) FROM customers.installations WHERE region = %s"
                " AND site_id = ANY(%s)",
                (region.value, list(self._sites_of(region, account_id))),
            ).fetchone()
        return Erasure(
            self.service,
            erased={"contacts": contacts, "account_name_email": 0 if already else 1},
            kept={
                "account_id": 1,
                "plan_changes": plans[0] if plans else 0,
                "installations": installations[0] if installations else 0,
            },
        )
