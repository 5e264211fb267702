"""The support service's refusals (the portal maps them to 404, 409, 422)."""

from __future__ import annotations

__all__ = ["ConflictError", "InvalidError", "NotFoundError", "SupportError"]


class SupportError(Exception):
    """Base of the service's refusals."""


class NotFoundError(SupportError):
    """No such ticket (or not reachable in the caller's scope)."""


class ConflictError(SupportError):
    """The ticket's state does not allow this."""


class InvalidError(SupportError):
    """A request the rules refuse whatever the state (a site not the account's)."""
