"""Customers models: what the API accepts (``*In``, ``*Patch``) and what it answers.

Every field is bounded (lengths, patterns, ranges, dates); text refuses control
characters (U+0000 first: PostgreSQL cannot store it) and lone surrogates (not UTF-8);
quantities are exact decimals (``numeric`` in the database, strings in JSON answers;
NaN and infinities refused whatever their spelling).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from cloud.events.types import ACCOUNT_ID_PATTERN, AccountId
from contracts.topics import Region

__all__ = [
    "ACCOUNT_ID_PATTERN",
    "FIRST_DAY",
    "LAST_DAY",
    "MAX_REGISTER_KWH",
    "MAX_SITE_ID",
    "SERIAL_PATTERN",
    "Account",
    "AccountId",
    "AccountIn",
    "AccountPatch",
    "AccountStatus",
    "Contact",
    "ContactIn",
    "ContactRole",
    "DeviceKind",
    "DeviceWarranty",
    "Installation",
    "InstallationIn",
    "MeterReplacement",
    "MeterReplacementIn",
    "PlanChange",
    "WarrantyIn",
]

#: Dates outside these are typing errors, not installations (PostgreSQL would take year 5874897).
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2100, 12, 31)
#: Registry site ids are PostgreSQL ``serial`` (int4).
MAX_SITE_ID = 2_147_483_647
#: A billing register: 9 digits of kWh, to the watt-hour (``numeric(12, 3)``).
MAX_REGISTER_KWH = Decimal("999999999.999")
#: A meter's or a device's serial as printed on it (also a path segment: no ``/``).
SERIAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: A user of the identity service ("usr_" + uuid4 hex): an opaque link, never resolved here.
USER_ID_PATTERN = r"^usr_[0-9a-f]{32}$"
#: A billing plan's code; the billing service defines the plans.
PLAN_CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
#: E.164: "+", country code, subscriber number; 15 digits at most.
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def _plain_text(value: str) -> str:
    """Refuse control characters (NUL, newlines, escapes …) and lone surrogates."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(f"character U+{ord(char):04X} is not allowed")
    return value


def _email(value: str) -> str:
    if not _EMAIL_RE.match(value):
        raise ValueError("not an email address (local@domain.tld)")
    return value.lower()


# One line of text each: trimmed, 1 to n characters, printable.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_plain_text),
]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_plain_text),
]
Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    AfterValidator(_plain_text),
]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)
]
Phone = Annotated[str, StringConstraints(pattern=PHONE_PATTERN, max_length=16)]
Serial = Annotated[str, StringConstraints(pattern=SERIAL_PATTERN, max_length=64)]
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN, max_length=36)]
PlanCode = Annotated[str, StringConstraints(pattern=PLAN_CODE_PATTERN, max_length=32)]
Day = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)]
Kwh = Annotated[
    Decimal,
    Field(ge=0, le=MAX_REGISTER_KWH, max_digits=12, decimal_places=3, allow_inf_nan=False),
]


class AccountStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    #: Final: a closed account is never reopened (a returning customer gets a new one).
    CLOSED = "closed"


class ContactRole(StrEnum):
    OWNER = "owner"
    BILLING = "billing"
    TECHNICAL = "technical"
    OTHER = "other"


class DeviceKind(StrEnum):
    INVERTER = "inverter"
    BATTERY = "battery"
    METER = "meter"
    PANEL = "panel"
    ISOLATOR = "isolator"
    GATEWAY = "gateway"
    OTHER = "other"


# -- accounts ---------------------------------------------------------------------------
class AccountIn(BaseModel):
    """A new account; its region is the region whose API creates it (its home)."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="the customer's name (a person or a company)")
    email: Email = Field(description="contact email (sign-in is the identity service's)")
    plan_code: PlanCode | None = Field(default=None, description="billing plan, once chosen")
    user_id: UserId | None = Field(
        default=None, description="the identity service's user that signs in for it"
    )


class AccountPatch(BaseModel):
    """Fields to change; an absent field stays, ``plan_code``/``user_id`` null clear it."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    email: Email | None = None
    plan_code: PlanCode | None = None
    user_id: UserId | None = None
    status: AccountStatus | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        for field in ("name", "email", "status"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: AccountId
    region: Region = Field(description="the account's home region: its data stays there")
    name: str
    email: str
    plan_code: str | None
    status: AccountStatus
    user_id: str | None
    created_at: datetime
    updated_at: datetime


# -- contacts ---------------------------------------------------------------------------
class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    email: Email | None = None
    phone: Phone | None = Field(default=None, examples=["+61290000000"])
    role: ContactRole = ContactRole.OWNER
    primary: bool = Field(default=False, description="the one to call first (one per account)")

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if self.email is None and self.phone is None:
            raise ValueError("a contact needs an email or a phone")
        return self


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: int
    account_id: str
    name: str
    email: str | None
    phone: str | None
    role: ContactRole
    primary: bool
    created_at: datetime


# -- a site's installation --------------------------------------------------------------
class InstallationIn(BaseModel):
    """A site's installation record. Angles in degrees: tilt from horizontal (0 flat,
    90 vertical), azimuth clockwise from true north (0 north, 180 south)."""

    model_config = ConfigDict(extra="forbid")

    pv_kwp: Decimal = Field(
        gt=0, le=10_000, max_digits=8, decimal_places=3, allow_inf_nan=False,
        description="PV peak power, kWp",
    )  # fmt: skip
    tilt_deg: Decimal = Field(ge=0, le=90, max_digits=4, decimal_places=1, allow_inf_nan=False)
    azimuth_deg: Decimal = Field(ge=0, le=360, max_digits=4, decimal_places=1, allow_inf_nan=False)
    battery_kwh: Decimal = Field(
        ge=0, le=10_000, max_digits=8, decimal_places=3, allow_inf_nan=False,
        description="usable battery capacity, kWh (0: no battery)",
    )  # fmt: skip
    network_operator: Label = Field(examples=["Ausgrid", "i-DE", "HECO"])
    tariff_zone: Code = Field(
        examples=["NSW", "HI", "canarias"],
        description="state or territory (au, us); peninsula, baleares, canarias, ceuta or "
        "melilla (es)",
    )
    installed_on: Day
    warranty_until: Day = Field(description="the installation's warranty (workmanship)")
    billing_meter: Serial = Field(
        description="serial of PoTR's billing-grade meter at the system's AC output; changed "
        "only by a meter replacement"
    )
    grid_meter: Serial | None = Field(
        default=None,
        description="serial of the billing-grade meter at the site's grid connection, another "
        "meter than billing_meter: au and es sites need it to bill energy consumed on site "
        "(its export is subtracted); us sites bill production and need none",
    )


class Installation(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    region: Region
    site_id: int
    pv_kwp: Decimal
    tilt_deg: Decimal
    azimuth_deg: Decimal
    battery_kwh: Decimal
    network_operator: str
    tariff_zone: str
    installed_on: date
    warranty_until: date
    billing_meter: str
    grid_meter: str | None
    updated_at: datetime


# -- meter replacements -----------------------------------------------------------------
class MeterReplacementIn(BaseModel):
    """Both registers at the swap, kWh: the old meter's last reading and the new meter's
    first, so billing's counter differences add up exactly across it."""

    model_config = ConfigDict(extra="forbid")

    old_serial: Serial = Field(description="must be the installation's billing meter")
    new_serial: Serial
    replaced_at: AwareDatetime = Field(description="when the swap happened (with its offset)")
    old_register_kwh: Kwh = Field(description="the old meter's final register, kWh")
    new_register_kwh: Kwh = Field(description="the new meter's starting register, kWh")


class MeterReplacement(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: int
    region: Region
    site_id: int
    old_serial: str
    new_serial: str
    replaced_at: datetime
    old_register_kwh: Decimal
    new_register_kwh: Decimal
    recorded_at: datetime


# -- device warranties ------------------------------------------------------------------
class WarrantyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DeviceKind
    warranty_until: Day


class DeviceWarranty(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    region: Region
    site_id: int
    serial: str
    kind: DeviceKind
    warranty_until: date
    updated_at: datetime


class PlanChange(BaseModel):
    """A plan change recorded for an account (from a support ticket): the plan, the date
    it takes effect, and when it was applied to the account (None: not yet)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plan_code: str
    effective_from: date
    source: str
    approved_by: str
    recorded_at: datetime
    applied_at: datetime | None
    #: The account's plan the change replaced, recorded when it was applied (None: not
    #: applied yet, or applied before the plan history was kept, decision 150).
    replaced_plan_code: str | None = None
