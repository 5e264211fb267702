"""The identity service's events (``user.*``): names and the payload, shared by producer
and consumer like :mod:`cloud.events.types` (kept apart so each service's catalogue
grows in its own module).

A payload carries what other services key on — the user id, role, home region, the
customer account and employee number, the technician's broker username — and never the
e-mail address or any credential. The one exception is ``user.contact_changed``
(:class:`UserContact`): a staff member's work address, for notify alone (a customer's
mail goes to their account's address, from the customers service); subscribe to the
names you handle, not to ``user.*``, unless you dispatch on the name.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from cloud.events.outbox import Event
from contracts.topics import Region

__all__ = [
    "USER_CONTACT_CHANGED",
    "USER_CREATED",
    "USER_DISABLED",
    "USER_ENABLED",
    "USER_UPDATED",
    "UserChanged",
    "UserContact",
    "contact_event",
    "user_event",
]

#: A user was created (``potr user add``, ``POST /api/v1/auth/users``).
USER_CREATED = "user.created"
#: A user's role, home region, account or name changed.
USER_UPDATED = "user.updated"
#: A user was disabled: their sessions are revoked; a technician's broker identity should
#: be (``broker_username``: ``potr broker revoke`` where the region's broker lives).
USER_DISABLED = "user.disabled"
USER_ENABLED = "user.enabled"
#: A staff member's work e-mail address became known or changed (notify's only).
USER_CONTACT_CHANGED = "user.contact_changed"


class UserChanged(BaseModel):
    """Payload of every ``user.*`` event: the user as they are after the change."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str
    role: str
    home_region: Region
    account_id: str | None = None
    employee_no: str | None = None
    broker_username: str | None = None
    disabled: bool = False


def user_event(name: str, change: UserChanged, *, occurred_at: datetime | None = None) -> Event:
    """The ``user.*`` event ``name`` for ``change``, in the user's home region."""
    fields: dict[str, object] = {
        "name": name,
        "region": change.home_region,
        "source": "identity",
        "payload": change.model_dump(mode="json"),
    }
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    return Event.model_validate(fields)


class UserContact(BaseModel):
    """Payload of ``user.contact_changed``: where a staff member's mail goes (None: no
    address any more)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str
    home_region: Region
    email: str | None


def contact_event(contact: UserContact, *, occurred_at: datetime | None = None) -> Event:
    """The ``user.contact_changed`` event for ``contact``, in the user's home region."""
    fields: dict[str, object] = {
        "name": USER_CONTACT_CHANGED,
        "region": contact.home_region,
        "source": "identity",
        "payload": contact.model_dump(mode="json"),
    }
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    return Event.model_validate(fields)
