"""The config service's refusals; ``str()`` is fit for an API answer."""

from __future__ import annotations

__all__ = ["ApprovalError", "ConfigError", "ConflictError", "NotFoundError", "RefusedError"]


class ConfigError(Exception):
    """Base of the config service's refusals."""


class NotFoundError(ConfigError):
    """Unknown gateway, device, command or version."""


class ConflictError(ConfigError):
    """The request cannot apply to the current state (e.g. nothing to roll back to)."""


class RefusedError(ConfigError):
    """A value that must not be signed: ``field``, ``limit`` and ``reason`` name why."""

    def __init__(self, field: str, limit: str, reason: str) -> None:
        self.field, self.limit, self.reason = field, limit, reason
        super().__init__(f"{field}: {reason}" + (f" (limit {limit})" if limit else ""))


class ApprovalError(RefusedError):
    """A change beyond the site's connection approval (region, trip settings, export
    limit); ``reference`` is the approval's, stored with the refusal."""

    def __init__(self, field: str, limit: str, reason: str, reference: str) -> None:
        self.reference = reference
        super().__init__(field, limit, reason)
