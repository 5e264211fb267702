"""Customers SQL (schema ``customers``); every function takes a connection in a transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from cloud.adapters.postgres import Connection, dict_row
from cloud.customers.models import (
    Account,
    AccountIn,
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
from cloud.regional_ids import next_id_sql
from cloud.scope import Scope
from cloud.search import SearchQuery
from contracts.topics import Region

_ACC_COLS = "id, region, name, email, plan_code, status, user_id, created_at, updated_at"
_CONTACT_COLS = 'id, account_id, name, email, phone, role, "primary", created_at'
_INST_COLS = (
    "region, site_id, pv_kwp, tilt_deg, azimuth_deg, battery_kwh, network_operator,"
    " tariff_zone, installed_on, warranty_until, billing_meter, grid_meter,"
    " updated_at"
)
_REPL_COLS = (
    "id, region, site_id, old_serial, new_serial, replaced_at, old_register_kwh,"
    " new_register_kwh, recorded_at"
)
_WARRANTY_COLS = "region, site_id, serial, kind, warranty_until, updated_at"


def _one(conn: Connection[Any], query: str, params: Any) -> dict[str, Any] | None:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchone()


def _all(conn: Connection[Any], query: str, params: Any) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


# -- accounts ---------------------------------------------------------------------------
def insert_account(
    conn: Connection[Any], account_id: str, region: Region, given: AccountIn
) -> Account:
    row = _one(
        conn,
        "INSERT INTO customers.accounts (id, region, name, email, plan_code, user_id)"
        f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_ACC_COLS}",
        (account_id, region.value, given.name, given.email, given.plan_code, given.user_id),
    )
    assert row is not None
    return Account.model_validate(row)


#: An account within a :class:`Scope` (its :meth:`Scope.sql_params`): its home region,
#: and for an account's scope that account only (``id = NULL`` is never true).
_ACCOUNT_IN_SCOPE = (
    "(%(scope_region)s::text IS NULL OR region = %(scope_region)s)"
    " AND (NOT %(scope_by_account)s::bool OR id = %(scope_account)s)"
)


def get_account(
    conn: Connection[Any],
    account_id: str,
    *,
    for_update: bool = False,
    scope: Scope | None = None,
) -> Account | None:
    """The account, or None (also when outside ``scope``; None: every account)."""
    lock = " FOR UPDATE" if for_update else ""
    row = _one(
        conn,
        f"SELECT {_ACC_COLS} FROM customers.accounts"
        f" WHERE id = %(id)s AND {_ACCOUNT_IN_SCOPE}{lock}",
        {"id": account_id, **(scope or Scope.everything()).sql_params()},
    )
    return Account.model_validate(row) if row else None


def list_accounts(conn: Connection[Any], scope: Scope, limit: int, offset: int) -> list[Account]:
    rows = _all(
        conn,
        f"SELECT {_ACC_COLS} FROM customers.accounts WHERE {_ACCOUNT_IN_SCOPE}"
        " ORDER BY region, id LIMIT %(limit)s OFFSET %(offset)s",
        {**scope.sql_params(), "limit": limit, "offset": offset},
    )
    return [Account.model_validate(r) for r in rows]


def count_accounts(conn: Connection[Any], region: Region, before: Sequence[datetime]) -> list[int]:
    """The accounts of ``region`` created before each instant of ``before`` and not
    closed, one count each, in order."""
    rows = conn.execute(
        "SELECT e.n, count(a.id)::int FROM unnest(%(before)s::timestamptz[])"
        " WITH ORDINALITY AS e(until, n)"
        " LEFT JOIN customers.accounts a ON a.region = %(region)s AND a.status <> 'closed'"
        " AND a.created_at < e.until GROUP BY e.n ORDER BY e.n",
        {"region": region.value, "before": list(before)},
    ).fetchall()
    return [n for _, n in rows]


def find_accounts(conn: Connection[Any], scope: Scope, query: SearchQuery) -> list[Account]:
    """Accounts in ``scope`` whose name or email holds ``query``'s text, whatever its
    case (see :mod:`cloud.search` for why ``ILIKE``): exact matches first, then those
    starting with it, then by name."""
    rows = _all(
        conn,
        f"SELECT {_ACC_COLS} FROM customers.accounts"
        f" WHERE {_ACCOUNT_IN_SCOPE}"
        " AND (name ILIKE %(pattern)s ESCAPE '\\' OR email ILIKE %(pattern)s ESCAPE '\\')"
        " ORDER BY (lower(name) = lower(%(text)s) OR lower(email) = lower(%(text)s)) DESC,"
        " (starts_with(lower(name), lower(%(text)s))"
        " OR starts_with(lower(email), lower(%(text)s))) DESC, name, id"
        " LIMIT %(limit)s",
        {**scope.sql_params(), "pattern": query.pattern, "text": query.text, "limit": query.limit},
    )
    return [Account.model_validate(r) for r in rows]


def update_account(conn: Connection[Any], account_id: str, changes: dict[str, Any]) -> Account:
    """Set ``changes`` (column → value; names from the model, never from a caller)."""
    sets = ", ".join(f"{column} = %({column})s" for column in changes)
    row = _one(
        conn,
        f"UPDATE customers.accounts SET {sets}, updated_at = now() WHERE id = %(id)s"
        f" RETURNING {_ACC_COLS}",
        {**changes, "id": account_id},
    )
    assert row is not None, "the caller holds the account's row lock"
    return Account.model_validate(row)


# -- plan changes -----------------------------------------------------------------------
_CHANGE_COLS = (
    "plan_code, effective_from, source, approved_by, recorded_at, applied_at, replaced_plan_code"
)


def insert_plan_change(
    conn: Connection[Any],
    account_id: str,
    plan_code: str,
    effective_from: date,
    source: str,
    approved_by: str,
) -> int | None:
    """Record a plan change; None when ``source`` recorded one already."""
    row = conn.execute(
        "INSERT INTO customers.plan_changes (account_id, plan_code, effective_from, source,"
        " approved_by) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source) DO NOTHING RETURNING id",
        (account_id, plan_code, effective_from, source, approved_by),
    ).fetchone()
    return int(row[0]) if row is not None else None


def due_plan_changes(conn: Connection[Any], today: date) -> list[tuple[int, str, str]]:
    """Unapplied plan changes effective by ``today``, oldest first: (id, account, plan)."""
    rows = conn.execute(
        "SELECT id, account_id, plan_code FROM customers.plan_changes"
        " WHERE applied_at IS NULL AND effective_from <= %s ORDER BY effective_from, id",
        (today,),
    ).fetchall()
    return [(int(i), str(a), str(p)) for i, a, p in rows]


def mark_plan_applied(conn: Connection[Any], change_id: int, replaced: str | None) -> None:
    """The change applied now, over the account's plan ``replaced`` (None: it had none)."""
    conn.execute(
        "UPDATE customers.plan_changes SET applied_at = now(), replaced_plan_code = %s"
        " WHERE id = %s",
        (replaced, change_id),
    )


def plan_changes(conn: Connection[Any], account_id: str) -> list[PlanChange]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {_CHANGE_COLS} FROM customers.plan_changes WHERE account_id = %s"
            " ORDER BY effective_from, id",
            (account_id,),
        )
        .fetchall()
    )
    return [PlanChange.model_validate(r) for r in rows]


def region_plan_changes(conn: Connection[Any], region: Region) -> dict[str, list[PlanChange]]:
    """The plan changes of the region's accounts, per account id, by effective date
    (billing's plan histories, one query for a whole cycle)."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT c.account_id, "
            + ", ".join(f"c.{col}" for col in _CHANGE_COLS.split(", "))
            + " FROM customers.plan_changes c JOIN customers.accounts a ON a.id = c.account_id"
            " WHERE a.region = %s ORDER BY c.account_id, c.effective_from, c.id",
            (region.value,),
        )
        .fetchall()
    )
    found: dict[str, list[PlanChange]] = {}
    for row in rows:
        account_id = row.pop("account_id")
        found.setdefault(account_id, []).append(PlanChange.model_validate(row))
    return found


# -- contacts ---------------------------------------------------------------------------
def count_contacts(conn: Connection[Any], account_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM customers.contacts WHERE account_id = %s", (account_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def insert_contact(conn: Connection[Any], account_id: str, given: ContactIn) -> Contact:
    row = _one(
        conn,
        'INSERT INTO customers.contacts (id, account_id, name, email, phone, role, "primary")'
        f" SELECT {next_id_sql('customers.contacts_id_seq', 'a.region')}, a.id, %s, %s, %s,"
        f" %s, %s FROM customers.accounts a WHERE a.id = %s RETURNING {_CONTACT_COLS}",
        (given.name, given.email, given.phone, given.role.value, given.primary, account_id),
    )
    assert row is not None
    return Contact.model_validate(row)


def list_contacts(conn: Connection[Any], account_id: str) -> list[Contact]:
    rows = _all(
        conn,
        f"SELECT {_CONTACT_COLS} FROM customers.contacts WHERE account_id = %s ORDER BY id",
        (account_id,),
    )
    return [Contact.model_validate(r) for r in rows]


def delete_contact(conn: Connection[Any], account_id: str, contact_id: int) -> bool:
    row = conn.execute(
        "DELETE FROM customers.contacts WHERE account_id = %s AND id = %s RETURNING id",
        (account_id, contact_id),
    ).fetchone()
    return row is not None


# -- installations ----------------------------------------------------------------------
def get_installation(
    conn: Connection[Any], region: Region, site_id: int, *, for_update: bool = False
) -> Installation | None:
    lock = " FOR UPDATE" if for_update else ""
    row = _one(
        conn,
        f"SELECT {_INST_COLS} FROM customers.installations"
        f" WHERE region = %s AND site_id = %s{lock}",
        (region.value, site_id),
    )
    return Installation.model_validate(row) if row else None


def list_installations(
    conn: Connection[Any], region: Region, after_site: int, limit: int
) -> list[Installation]:
    rows = _all(
        conn,
        f"SELECT {_INST_COLS} FROM customers.installations"
        " WHERE region = %s AND site_id > %s ORDER BY site_id LIMIT %s",
        (region.value, after_site, limit),
    )
    return [Installation.model_validate(r) for r in rows]


def _installation_params(region: Region, site_id: int, given: InstallationIn) -> dict[str, Any]:
    return {"region": region.value, "site_id": site_id, **given.model_dump()}


def insert_installation(
    conn: Connection[Any], region: Region, site_id: int, given: InstallationIn
) -> Installation:
    row = _one(
        conn,
        "INSERT INTO customers.installations (region, site_id, pv_kwp, tilt_deg, azimuth_deg,"
        " battery_kwh, network_operator, tariff_zone, installed_on, warranty_until,"
        " billing_meter, grid_meter) VALUES (%(region)s, %(site_id)s, %(pv_kwp)s,"
        " %(tilt_deg)s, %(azimuth_deg)s, %(battery_kwh)s, %(network_operator)s,"
        " %(tariff_zone)s, %(installed_on)s, %(warranty_until)s, %(billing_meter)s,"
        f" %(grid_meter)s) RETURNING {_INST_COLS}",
        _installation_params(region, site_id, given),
    )
    assert row is not None
    return Installation.model_validate(row)


def update_installation(
    conn: Connection[Any], region: Region, site_id: int, given: InstallationIn
) -> Installation:
    row = _one(
        conn,
        "UPDATE customers.installations SET pv_kwp = %(pv_kwp)s, tilt_deg = %(tilt_deg)s,"
        " azimuth_deg = %(azimuth_deg)s, battery_kwh = %(battery_kwh)s,"
        " network_operator = %(network_operator)s, tariff_zone = %(tariff_zone)s,"
        " installed_on = %(installed_on)s, warranty_until = %(warranty_until)s,"
        " billing_meter = %(billing_meter)s, grid_meter = %(grid_meter)s, updated_at = now()"
        f" WHERE region = %(region)s AND site_id = %(site_id)s RETURNING {_INST_COLS}",
        _installation_params(region, site_id, given),
    )
    assert row is not None, "the caller holds the installation's row lock"
    return Installation.model_validate(row)


def set_billing_meter(conn: Connection[Any], region: Region, site_id: int, serial: str) -> None:
    conn.execute(
        "UPDATE customers.installations SET billing_meter = %s, updated_at = now()"
        " WHERE region = %s AND site_id = %s",
        (serial, region.value, site_id),
    )


# -- meter replacements -----------------------------------------------------------------
def latest_replacement_at(conn: Connection[Any], region: Region, site_id: int) -> datetime | None:
    row = conn.execute(
        "SELECT max(replaced_at) FROM customers.meter_replacements"
        " WHERE region = %s AND site_id = %s",
        (region.value, site_id),
    ).fetchone()
    return row[0] if row else None


def insert_replacement(
    conn: Connection[Any], region: Region, site_id: int, given: MeterReplacementIn
) -> MeterReplacement:
    row = _one(
        conn,
        "INSERT INTO customers.meter_replacements (region, site_id, old_serial, new_serial,"
        " replaced_at, old_register_kwh, new_register_kwh)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_REPL_COLS}",
        (
            region.value,
            site_id,
            given.old_serial,
            given.new_serial,
            given.replaced_at,
            given.old_register_kwh,
            given.new_register_kwh,
        ),
    )
    assert row is not None
    return MeterReplacement.model_validate(row)


def list_replacements(
    conn: Connection[Any], region: Region, site_id: int, limit: int, offset: int
) -> list[MeterReplacement]:
    rows = _all(
        conn,
        f"SELECT {_REPL_COLS} FROM customers.meter_replacements"
        " WHERE region = %s AND site_id = %s ORDER BY replaced_at, id LIMIT %s OFFSET %s",
        (region.value, site_id, limit, offset),
    )
    return [MeterReplacement.model_validate(r) for r in rows]


def region_replacements(conn: Connection[Any], region: Region) -> list[MeterReplacement]:
    """Every swap of the region's sites, by site and time (few: a meter lasts years)."""
    rows = _all(
        conn,
        f"SELECT {_REPL_COLS} FROM customers.meter_replacements"
        " WHERE region = %s ORDER BY site_id, replaced_at, id",
        (region.value,),
    )
    return [MeterReplacement.model_validate(r) for r in rows]


# -- device warranties ------------------------------------------------------------------
def upsert_warranty(
    conn: Connection[Any], region: Region, site_id: int, serial: str, given: WarrantyIn
) -> DeviceWarranty:
    row = _one(
        conn,
        "INSERT INTO customers.device_warranties (region, site_id, serial, kind, warranty_until)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (region, site_id, serial) DO UPDATE"
        " SET kind = EXCLUDED.kind, warranty_until = EXCLUDED.warranty_until,"
        f" updated_at = now() RETURNING {_WARRANTY_COLS}",
        (region.value, site_id, serial, given.kind.value, given.warranty_until),
    )
    assert row is not None
    return DeviceWarranty.model_validate(row)


def list_warranties(
    conn: Connection[Any], region: Region, site_id: int, limit: int, offset: int
) -> list[DeviceWarranty]:
    rows = _all(
        conn,
        f"SELECT {_WARRANTY_COLS} FROM customers.device_warranties"
        " WHERE region = %s AND site_id = %s ORDER BY serial LIMIT %s OFFSET %s",
        (region.value, site_id, limit, offset),
    )
    return [DeviceWarranty.model_validate(r) for r in rows]
