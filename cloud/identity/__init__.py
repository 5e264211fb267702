"""Identity (global): users and their roles, passwords and PINs, sessions, API keys, the
audit of it all — and the access tokens every regional API verifies.

Published interface: the token functions (:func:`verify_access_token` → :class:`Principal`,
:func:`issue_access_token`), the keys (:func:`load_signing_key`,
:func:`load_verifying_keys`), :class:`IdentityService` with its models, options and
errors, :func:`create_router`, :func:`run_purge_loop` and the mail adapter for the
composition root, and the settings. Other services import nothing else from here.
"""

from cloud.identity.api import AUTH_PREFIX, create_router
from cloud.identity.housekeeping import run_purge_loop
from cloud.identity.keys import KeyFileError, load_signing_key, load_verifying_keys
from cloud.identity.mail import Mailer, SmtpMailer
from cloud.identity.models import (
    AccessToken,
    ApiKey,
    ApiKeyCreated,
    ApiKeyIn,
    AuditEntry,
    PinReset,
    TokenPair,
    User,
    UserCreated,
    UserIn,
    UserPatch,
)
from cloud.identity.passwords import CredentialHasher
from cloud.identity.roles import EMPLOYEE_ROLES, ROLE_SCOPES, SCOPES, Role
from cloud.identity.service import (
    SCHEMA,
    ConflictError,
    IdentityError,
    IdentityOptions,
    IdentityService,
    InvalidCredentials,
    NotFoundError,
    RefusedError,
    ResetMail,
    Throttled,
    create_identity_service,
)
from cloud.identity.settings import (
    DEV_PIN_PEPPER,
    IdentityRelaySettings,
    IdentitySettings,
    SigningSettings,
    SmtpSettings,
    TokenSettings,
)
from cloud.identity.tokens import (
    AUDIENCE,
    ISSUER,
    MAX_ACCESS_TTL_S,
    Principal,
    TokenError,
    VerifyingKeys,
    issue_access_token,
    verify_access_token,
)

__all__ = [
    "AUDIENCE",
    "AUTH_PREFIX",
    "DEV_PIN_PEPPER",
    "EMPLOYEE_ROLES",
    "ISSUER",
    "MAX_ACCESS_TTL_S",
    "ROLE_SCOPES",
    "SCHEMA",
    "SCOPES",
    "AccessToken",
    "ApiKey",
    "ApiKeyCreated",
    "ApiKeyIn",
    "AuditEntry",
    "ConflictError",
    "CredentialHasher",
    "IdentityError",
    "IdentityOptions",
    "IdentityRelaySettings",
    "IdentityService",
    "IdentitySettings",
    "InvalidCredentials",
    "KeyFileError",
    "Mailer",
    "NotFoundError",
    "PinReset",
    "Principal",
    "RefusedError",
    "ResetMail",
    "Role",
    "SigningSettings",
    "SmtpMailer",
    "SmtpSettings",
    "Throttled",
    "TokenError",
    "TokenPair",
    "TokenSettings",
    "User",
    "UserCreated",
    "UserIn",
    "UserPatch",
    "VerifyingKeys",
    "create_identity_service",
    "create_router",
    "issue_access_token",
    "load_signing_key",
    "load_verifying_keys",
    "run_purge_loop",
    "verify_access_token",
]
