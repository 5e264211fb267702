"""Identity's models: bounded inputs (every string has a length and a pattern, none may
hold U+0000, unknown fields are refused) and the answers the API gives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from cloud.identity.roles import Role
from contracts.identities import IdentityError, IdentityKind, parse_username
from contracts.topics import Region

__all__ = [
    "AccessToken",
    "AccountId",
    "ApiKey",
    "ApiKeyCreated",
    "ApiKeyIn",
    "ApiKeyLogin",
    "AuditEntry",
    "Email",
    "EmployeeNo",
    "LoginIn",
    "LogoutIn",
    "PasswordResetConfirm",
    "PasswordResetRequest",
    "PinLoginIn",
    "PinReset",
    "RefreshIn",
    "TokenPair",
    "User",
    "UserCreated",
    "UserId",
    "UserIn",
    "UserPatch",
]

_EMAIL_RE = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"  # noqa: E501


def _upper(value: str) -> str:
    return value.upper()


def _technician(value: str) -> str:
    try:
        kind, _ = parse_username(value)
    except IdentityError as exc:
        raise ValueError(str(exc)) from None
    if kind is not IdentityKind.TECHNICIAN:
        raise ValueError("a user's broker identity is a technician's: _tech/<name>")
    return value


Email = Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=_EMAIL_RE)]
#: What a user types: 1 … 256 characters, no U+0000 (checked again by the policy).
Password = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]+$")]
Pin = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
EmployeeNo = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$"),
    AfterValidator(_upper),
]
DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]
ApiKeyName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]
AccountId = Annotated[str, StringConstraints(pattern=r"^acc_[0-9a-f]{32}$")]
UserId = Annotated[str, StringConstraints(pattern=r"^usr_[0-9a-f]{32}$")]
BrokerUsername = Annotated[str, StringConstraints(max_length=80), AfterValidator(_technician)]
#: Opaque tokens we issue: a prefix and 43 URL-safe characters.
OpaqueToken = Annotated[
    str, StringConstraints(max_length=64, pattern=r"^[a-z]{2,4}_[A-Za-z0-9_-]{43}$")
]
ApiKeyText = Annotated[
    str, StringConstraints(max_length=80, pattern=r"^pak_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$")
]
Scope = Literal["read", "write", "admin"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- log in ---------------------------------------------------------------------------------
class LoginIn(_In):
    email: Email
    password: Password


class PinLoginIn(_In):
    employee_no: EmployeeNo
    pin: Pin


class RefreshIn(_In):
    refresh_token: OpaqueToken


class LogoutIn(_In):
    refresh_token: OpaqueToken
    #: End every session of the user, not only this one.
    everywhere: bool = False


class PasswordResetRequest(_In):
    email: Email


class PasswordResetConfirm(_In):
    token: OpaqueToken
    new_password: Password


class ApiKeyLogin(_In):
    api_key: ApiKeyText


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    #: Seconds until the access token expires.
    expires_in: int


class TokenPair(AccessToken):
    refresh_token: str
    #: Seconds until the refresh token expires (each refresh issues a new one).
    refresh_expires_in: int


# -- users ----------------------------------------------------------------------------------
class UserIn(_In):
    email: Email
    display_name: DisplayName
    role: Role
    home_region: Region
    account_id: AccountId | None = None
    employee_no: EmployeeNo | None = None
    broker_username: BrokerUsername | None = None
    #: Optional: without one, the user sets it through a password reset.
    password: Password | None = None


class UserPatch(_In):
    display_name: DisplayName | None = None
    role: Role | None = None
    home_region: Region | None = None
    account_id: AccountId | None = None


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    email: str
    display_name: str
    role: Role
    home_region: Region
    account_id: str | None
    employee_no: str | None
    broker_username: str | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


class UserCreated(User):
    #: The first PIN of a user with an employee number: shown once, never stored.
    pin: str | None = None


class PinReset(BaseModel):
    user_id: str
    #: Shown once, never stored.
    pin: str


# -- API keys -------------------------------------------------------------------------------
class ApiKeyIn(_In):
    name: ApiKeyName
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    expires_in_days: int | None = Field(default=90, ge=1, le=365)


class ApiKey(BaseModel):
    id: str
    user_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    #: The key itself: shown once, only its hash is stored.
    key: str


class AuditEntry(BaseModel):
    id: int
    at: datetime
    action: str
    user_id: str | None
    actor: str | None
    identifier: str | None
    address: str | None
    detail: dict[str, object]
