"""Payment providers: the port billing charges customers (and refunds them) through, and
a local provider for tests and the demo.

A provider answers a charge with a :class:`PaymentReceipt` whose ``reference`` is the
provider's own id of the payment; :meth:`BillingService.record_payment` stores a receipt
once per (provider, reference), so a charge retried with the same idempotency key (the
provider returns the same receipt) is one payment. A refusal is a
:class:`PaymentDeclinedError` with the provider's reason, never ``None``. A refund pays
money back to the account's payment method, idempotent by its key in the same way
(:class:`RefundReceipt`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID, uuid5

from contracts.timeutil import utc_now

__all__ = [
    "LocalPaymentProvider",
    "PaymentDeclinedError",
    "PaymentProvider",
    "PaymentReceipt",
    "RefundReceipt",
]

_LOCAL_REFS = UUID("5d2b7a9e-4c1f-5a83-b6e0-2f8d1c7a3e95")


@dataclass(frozen=True, slots=True)
class PaymentReceipt:
    """A payment the provider took: ``amount`` (positive, in cents) of ``currency`` from
    ``account_id`` at ``received_at``; ``reference`` unique at ``provider``."""

    provider: str
    reference: str
    account_id: str
    amount: Decimal
    currency: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class RefundReceipt:
    """Money the provider paid back: ``amount`` (positive, in cents) of ``currency`` to
    ``account_id`` at ``refunded_at``; ``reference`` unique at ``provider``."""

    provider: str
    reference: str
    account_id: str
    amount: Decimal
    currency: str
    refunded_at: datetime


class PaymentDeclinedError(Exception):
    """The provider refused the charge (``reason`` as it said)."""

    def __init__(self, account_id: str, reason: str) -> None:
        super().__init__(f"payment from {account_id} declined: {reason}")
        self.account_id = account_id
        self.reason = reason


class PaymentProvider(Protocol):
    name: str

    def charge(
        self, account_id: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> PaymentReceipt:
        """Take ``amount`` of ``currency`` from the account's payment method; the same
        ``idempotency_key`` again returns the first receipt and charges nothing more.
        :class:`PaymentDeclinedError` when refused."""
        ...

    def refund(
        self, account_id: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundReceipt:
        """Pay ``amount`` of ``currency`` back to the account's payment method; the same
        ``idempotency_key`` again returns the first receipt and pays nothing more.
        :class:`PaymentDeclinedError` when refused."""
        ...


@dataclass
class LocalPaymentProvider:
    """A deterministic in-process provider: references derive from the idempotency key;
    accounts in ``declining`` (or every account while ``decline_all``) are refused."""

    name: str = "local"
    clock: Callable[[], datetime] = utc_now
    declining: Collection[str] = field(default_factory=set)
    decline_all: bool = False
    _taken: dict[str, PaymentReceipt] = field(default_factory=dict)
    _refunded: dict[str, RefundReceipt] = field(default_factory=dict)

    def charge(
        self, account_id: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> PaymentReceipt:
        if not isinstance(amount, Decimal) or amount <= 0:
            raise ValueError(f"a charge is a positive Decimal, not {amount!r}")
        if idempotency_key in self._taken:
            return self._taken[idempotency_key]
        if self.decline_all or account_id in self.declining:
            raise PaymentDeclinedError(account_id, "card declined (local provider)")
        receipt = PaymentReceipt(
            self.name,
            f"loc_{uuid5(_LOCAL_REFS, idempotency_key).hex}",
            account_id,
            amount,
            currency,
            self.clock(),
        )
        self._taken[idempotency_key] = receipt
        return receipt

    def refund(
        self, account_id: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundReceipt:
        if not isinstance(amount, Decimal) or amount <= 0:
            raise ValueError(f"a refund is a positive Decimal, not {amount!r}")
        if idempotency_key in self._refunded:
            return self._refunded[idempotency_key]
        if self.decline_all or account_id in self.declining:
            raise PaymentDeclinedError(account_id, "refund refused (local provider)")
        receipt = RefundReceipt(
            self.name,
            f"lrf_{uuid5(_LOCAL_REFS, 'refund/' + idempotency_key).hex}",
            account_id,
            amount,
            currency,
            self.clock(),
        )
        self._refunded[idempotency_key] = receipt
        return receipt
