"""The customers service's refusals; ``str()`` is fit for an API answer."""

from __future__ import annotations

__all__ = ["ConflictError", "CustomersError", "NotFoundError", "RefusedError"]


class CustomersError(Exception):
    """Base of the customers service's refusals."""


class NotFoundError(CustomersError):
    """Unknown account, contact, installation record (in the region asked)."""


class ConflictError(CustomersError):
    """The request does not fit the current state (a second primary contact, a billing
    meter changed outside a meter replacement, a closed account …)."""


class RefusedError(CustomersError):
    """A value each field allows but the record does not: ``field``, ``limit`` and
    ``reason`` name why (answered 422 like a field out of bounds)."""

    def __init__(self, field: str, limit: str, reason: str) -> None:
        self.field, self.limit, self.reason = field, limit, reason
        super().__init__(f"{field}: {reason}" + (f" (limit {limit})" if limit else ""))
