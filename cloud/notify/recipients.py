"""Who notify can tell: its own tables of customer accounts and people, kept from events
(``customer.created/updated``, ``user.*``, ``user.contact_changed``), and the look-ups
that turn an audience (an account's users, a region's operators …) into
:class:`~cloud.notify.models.Recipient` lists.

* A **customer** user's mail goes to their account's e-mail address (the customers
  service's, on ``customer.*``): identity's ``user.*`` events carry no address by design,
  and the account's address is the one the company writes to about the account's sites.
  A closed account's users are told nothing; a suspended one's still are (safety).
* **Staff** (operators, MOSIEs, admins, support) always get the inbox, and mail once
  identity has told their work address (``user.contact_changed``). A technician is
  also found by their employee number (dispatch's ``assignee``).
* Every write keeps the newest event: a row is changed only by an event that occurred at
  or after the one it was last taken from, so a late retry never undoes a later change.

Every look-up is scoped to one region: the alarm's or the notice's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cloud.adapters.postgres import Connection
from cloud.events.types import CustomerAccount
from cloud.events.users import UserChanged, UserContact
from cloud.notify.models import Recipient
from contracts.topics import Region

__all__ = [
    "accounts_in",
    "customers_of",
    "employee_of",
    "save_account",
    "save_contact",
    "save_person",
    "staff_of",
]

#: Roles of the company's people, as identity names them.
STAFF_ROLES = frozenset({"admin", "operator", "support", "mosie"})


def save_account(conn: Connection[Any], account: CustomerAccount, at: datetime) -> None:
    conn.execute(
        "INSERT INTO notify.accounts (account_id, region, name, email, plan_code, status,"
        " source_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (account_id) DO UPDATE SET region = excluded.region,"
        " name = excluded.name, email = excluded.email, plan_code = excluded.plan_code,"
        " status = excluded.status, source_at = excluded.source_at"
        " WHERE notify.accounts.source_at <= excluded.source_at",
        (
            account.account_id,
            account.region.value,
            account.name,
            account.email,
            account.plan_code,
            account.status,
            at,
        ),
    )


def save_person(conn: Connection[Any], person: UserChanged, at: datetime) -> None:
    conn.execute(
        "INSERT INTO notify.people (user_id, role, region, account_id, employee_no, disabled,"
        " source_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (user_id) DO UPDATE SET role = excluded.role, region = excluded.region,"
        " account_id = excluded.account_id, employee_no = excluded.employee_no,"
        " disabled = excluded.disabled, source_at = excluded.source_at"
        " WHERE notify.people.source_at <= excluded.source_at",
        (
            person.user_id,
            person.role,
            person.home_region.value,
            person.account_id,
            person.employee_no,
            person.disabled,
            at,
        ),
    )


def save_contact(conn: Connection[Any], contact: UserContact, at: datetime) -> None:
    """A staff member's address. One may arrive before their ``user.created`` (another
    queue): the row is made with what the contact says (role unknown: ``staff`` until
    the user event fills it in, ``source_at`` at the epoch so any user event wins)."""
    conn.execute(
        "INSERT INTO notify.people (user_id, role, region, source_at, email, email_at)"
        " VALUES (%s, 'staff', %s, '-infinity', %s, %s)"
        " ON CONFLICT (user_id) DO UPDATE SET email = excluded.email,"
        " email_at = excluded.email_at"
        " WHERE notify.people.email_at IS NULL OR notify.people.email_at <= excluded.email_at",
        (contact.user_id, contact.home_region.value, contact.email, at),
    )


def customers_of(
    conn: Connection[Any], region: Region, account_ids: Sequence[str]
) -> dict[str, list[Recipient]]:
    """The enabled customer users of each of ``account_ids`` in ``region`` whose account is
    not closed, with the account's address (accounts without such users are absent)."""
    rows = conn.execute(
        "SELECT a.account_id, p.user_id, a.email FROM notify.accounts a"
        " JOIN notify.people p ON p.account_id = a.account_id"
        " WHERE a.region = %s AND a.account_id = ANY(%s) AND a.status <> 'closed'"
        " AND p.role = 'customer' AND NOT p.disabled"
        " ORDER BY a.account_id, p.user_id",
        (region.value, list(account_ids)),
    ).fetchall()
    found: dict[str, list[Recipient]] = {}
    for account_id, user_id, email in rows:
        found.setdefault(account_id, []).append(_recipient(user_id, email))
    return found


def staff_of(conn: Connection[Any], region: Region, roles: Sequence[str]) -> list[Recipient]:
    """The enabled people of ``roles`` whose home region is ``region``, with their work
    address when known."""
    rows = conn.execute(
        "SELECT user_id, email FROM notify.people"
        " WHERE region = %s AND role = ANY(%s) AND NOT disabled ORDER BY user_id",
        (region.value, [r for r in roles if r in STAFF_ROLES]),
    ).fetchall()
    return [_recipient(user_id, email) for user_id, email in rows]


def employee_of(conn: Connection[Any], region: Region, employee_no: str) -> list[Recipient]:
    """The enabled staff member of ``region`` with ``employee_no`` (dispatch names a
    technician so), with their work address when known; empty when notify has not heard
    of them. A list: identity keeps one user per employee, but notify does not depend
    on it."""
    rows = conn.execute(
        "SELECT user_id, email FROM notify.people"
        " WHERE region = %s AND employee_no = %s AND role = ANY(%s) AND NOT disabled"
        " ORDER BY user_id",
        (region.value, employee_no, sorted(STAFF_ROLES)),
    ).fetchall()
    return [_recipient(user_id, email) for user_id, email in rows]


def _recipient(user_id: str, email: str | None) -> Recipient:
    """A recipient; an address notify's models refuse (no mail header may carry it) is
    left out: the inbox still reaches them."""
    try:
        return Recipient(user_id=user_id, email=email)
    except ValidationError:
        return Recipient(user_id=user_id)


def accounts_in(
    conn: Connection[Any],
    region: Region,
    *,
    account_ids: Sequence[str] | None = None,
    plan_code: str | None = None,
) -> list[str]:
    """The active accounts of ``region``: those of ``account_ids`` (None: all), on
    ``plan_code`` when given; sorted."""
    rows = conn.execute(
        "SELECT account_id FROM notify.accounts WHERE region = %s AND status = 'active'"
        " AND (%s::text[] IS NULL OR account_id = ANY(%s::text[]))"
        " AND (%s::text IS NULL OR plan_code = %s::text) ORDER BY account_id",
        (
            region.value,
            None if account_ids is None else list(account_ids),
            None if account_ids is None else list(account_ids),
            plan_code,
            plan_code,
        ),
    ).fetchall()
    return [r[0] for r in rows]
