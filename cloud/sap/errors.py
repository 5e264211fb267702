"""The SAP integration's errors: what a caller can act on, whatever the transport.

The adapter (:mod:`cloud.sap.odata`) translates HTTP and library failures into these
once, at its boundary; the exporter decides by type alone:

- :class:`SapUnavailableError`: nothing was (or is known to be) done — retry later;
- :class:`SapTimeoutError`: the request may have been carried out — re-query by our
  reference before anything is sent again, never retry blind;
- :class:`SapBusinessError`: SAP refused the content (a closed posting period, an
  unknown account) — retrying changes nothing: dead-letter it with the reason;
- :class:`SapRefusedError`: refused before sending (a field too long for SAP) — the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "SapBusinessError",
    "SapError",
    "SapMessage",
    "SapRefusedError",
    "SapTimeoutError",
    "SapUnavailableError",
]


@dataclass(frozen=True)
class SapMessage:
    """One SAP message: ``code`` the T100 class and number (``F5/201``) or a Gateway
    exception class, ``target`` the property it is about (may be empty)."""

    code: str
    message: str
    severity: str = "error"
    target: str = ""


@dataclass
class SapError(Exception):
    """Base of the integration's errors. ``transaction_id``: SAP Gateway's id of the
    failed request (``innererror.transactionid``), what SAP's error log is searched by."""

    reason: str
    status: int | None = None
    code: str = ""
    transaction_id: str = ""
    details: list[SapMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.reason)

    def __str__(self) -> str:
        parts = [self.reason]
        if self.code:
            parts.append(f"[{self.code}]")
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.transaction_id:
            parts.append(f"transaction {self.transaction_id}")
        return " ".join(parts)


class SapUnavailableError(SapError):
    """SAP did not carry the request out (unreachable, 5xx, busy, locked): retry later."""


class SapTimeoutError(SapError):
    """No answer in time after the request was sent: it may have been carried out."""


class SapBusinessError(SapError):
    """SAP refused the content; the same request will be refused again."""


class SapRefusedError(SapError):
    """Refused here, before anything was sent: the content cannot be represented in SAP."""
