"""What PoTR sends SAP, as plain data: business partners and accounts-receivable
documents, and the gateway protocol that carries them (pure: no I/O).

An issued document (:class:`~cloud.events.invoices.InvoiceIssued`) becomes one FI-AR
journal entry (:class:`ArDocument`): the customer line carries the gross, one revenue
line per tax rate the net at that rate, one tax line per rate the tax at that rate.
Signs follow SAP's: a debit is positive (``DebitCreditCode`` ``S``), a credit negative
(``H``); an invoice or a debit note debits the customer, a credit note or a cancellation
credits them. The entry balances by construction (gross = net + tax).

Our document number travels in SAP's 16-character reference field
(``DocumentReferenceID``, BKPF-XBLNR) and identifies the entry in SAP: the exporter
queries by it before creating, so a retry never makes a second document. A customer's
business partner carries :func:`partner_external_id` (20 characters, BUT000-BPEXT) —
derived from our account id, which is 36 characters and does not fit.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Generic, Literal, Protocol, TypeAlias, TypeVar

from cloud.events.invoices import DocumentKind, InvoiceIssued
from cloud.events.payments import PaymentMoved
from cloud.events.types import CustomerAccount
from cloud.sap.errors import SapBusinessError, SapRefusedError, SapUnavailableError

__all__ = [
    "EXTERNAL_ID_LENGTH",
    "REFERENCE_LENGTH",
    "ArDocument",
    "ArLine",
    "ArRecord",
    "Created",
    "Failed",
    "Outcome",
    "PartnerDraft",
    "PartnerRecord",
    "PostingRules",
    "Refused",
    "SapGateway",
    "ar_document",
    "check_reference",
    "partner_draft",
    "partner_external_id",
    "payment_document",
]

#: BKPF-XBLNR / ``DocumentReferenceID``: our document number must fit.
REFERENCE_LENGTH = 16
#: BUT000-BPEXT / ``BusinessPartnerIDByExtSystem``.
EXTERNAL_ID_LENGTH = 20
#: ``AccountingDocumentHeaderText`` (BKPF-BKTXT) and ``DocumentItemText`` (BSEG-SGTXT).
_HEADER_TEXT_LENGTH = 25
_ITEM_TEXT_LENGTH = 50
#: ``AssignmentReference`` (BSEG-ZUONR): the invoice a note belongs to, for matching.
_ASSIGNMENT_LENGTH = 18
#: ``OrganizationBPName1`` / ``OrganizationBPName2``.
_NAME_PART_LENGTH = 40
_CENT = Decimal("0.01")
_RAISES_BALANCE: dict[DocumentKind, bool] = {
    "invoice": True,
    "debit_note": True,
    "credit_note": False,
    "cancellation": False,
}


def check_reference(reference: str) -> str:
    """``reference`` if SAP's reference field holds it; else :class:`SapRefusedError`
    (never truncated: a cut number would name another document)."""
    if not reference or len(reference) > REFERENCE_LENGTH:
        raise SapRefusedError(
            f"reference {reference!r} has {len(reference)} characters;"
            f" SAP's DocumentReferenceID holds 1 to {REFERENCE_LENGTH}"
        )
    if "'" in reference:
        raise SapRefusedError(f"reference {reference!r}: a quote cannot be queried by")
    return reference


def partner_external_id(account_id: str) -> str:
    """The 20-character id our account carries in SAP (``BusinessPartnerIDByExtSystem``).

    The account id (``acc_`` + 32 hex digits) does not fit 20 characters, so the first
    100 bits of its hex are written in RFC 4648 base32 (upper case and digits: safe in a
    CHAR field and a ``$filter`` literal). A pure function of the account id, so any
    process derives the same key; two accounts collide with odds of about 2**-94 per
    pair (six of the bits are fixed by uuid4). The mapping back is our table's.
    """
    hex_digits = account_id.removeprefix("acc_")
    raw = bytes.fromhex(hex_digits)  # 16 bytes
    # 100 bits = 12 whole bytes and the top half of the 13th.
    head = raw[:12] + bytes([raw[12] & 0xF0])
    encoded = base64.b32encode(head).decode("ascii")
    return encoded[:EXTERNAL_ID_LENGTH]


@dataclass(frozen=True)
class PostingRules:
    """How one region's documents post in SAP: its company code, the G/L accounts of
    revenue and output tax, and the journal-entry types (``DR`` customer invoice, ``DG``
    customer credit memo, the standard types; a system may configure others)."""

    company_code: str
    revenue_account: str
    tax_account: str
    invoice_type: str = "DR"
    credit_type: str = "DG"
    #: Incoming and outgoing payments: ``DZ`` (customer payment), against the bank
    #: clearing account.
    payment_type: str = "DZ"
    bank_account: str = "11001000"


@dataclass(frozen=True)
class ArLine:
    """One line of an AR document; ``amount`` signed (debit positive, credit negative)."""

    role: Literal["customer", "revenue", "tax", "bank"]
    amount: Decimal
    text: str
    customer: str = ""
    gl_account: str = ""
    tax_rate: Decimal | None = None

    @property
    def debit_credit(self) -> Literal["S", "H"]:
        return "S" if self.amount >= 0 else "H"


@dataclass(frozen=True)
class ArDocument:
    """An FI-AR journal entry as PoTR sends it (transport-neutral: the OData stand-in
    and SAP's SOAP ``JournalEntryCreateRequestConfirmation_In`` carry the same fields)."""

    reference: str
    kind: DocumentKind | Literal["payment", "refund"]
    company_code: str
    document_type: str
    document_date: date
    posting_date: date
    currency: str
    header_text: str
    assignment: str
    lines: tuple[ArLine, ...]

    def __post_init__(self) -> None:
        check_reference(self.reference)
        if len(self.header_text) > _HEADER_TEXT_LENGTH:
            raise SapRefusedError(f"header text of {self.reference} is too long")
        if len(self.assignment) > _ASSIGNMENT_LENGTH:
            raise SapRefusedError(f"assignment of {self.reference} is too long")
        if sum((line.amount for line in self.lines), Decimal(0)) != 0:
            raise SapRefusedError(f"journal entry {self.reference} does not balance")
        if [line.role for line in self.lines].count("customer") != 1:
            raise SapRefusedError(f"journal entry {self.reference} needs one customer line")

    @property
    def customer_amount(self) -> Decimal:
        """The customer line's signed amount: +gross for an invoice or a debit note,
        -gross for a credit note or a cancellation (what reconciliation compares)."""
        return next(line.amount for line in self.lines if line.role == "customer")


def _tax_by_rate(issued: InvoiceIssued) -> dict[Decimal, tuple[Decimal, Decimal]]:
    """rate → (net at that rate, tax at that rate rounded once, half up)."""
    nets: dict[Decimal, Decimal] = {}
    for line in issued.lines:
        nets[line.tax_rate] = nets.get(line.tax_rate, Decimal(0)) + line.net
    return {
        rate: (net, (net * rate).quantize(_CENT, rounding=ROUND_HALF_UP))
        for rate, net in sorted(nets.items())
    }


def ar_document(issued: InvoiceIssued, *, customer: str, rules: PostingRules) -> ArDocument:
    """The AR journal entry of ``issued`` for SAP customer ``customer``.

    Tax lines are per rate, computed as billing computes them (the sum of the lines at
    the rate times the rate, rounded once); if they do not add up to the document's tax
    the document is refused rather than posted with a tax SAP would not recompute.
    """
    by_rate = _tax_by_rate(issued)
    if sum((tax for _, tax in by_rate.values()), Decimal(0)) != issued.tax:
        raise SapRefusedError(
            f"{issued.number}: tax per rate adds up to"
            f" {sum((t for _, t in by_rate.values()), Decimal(0))}, the document says {issued.tax}"
        )
    sign = Decimal(1) if _RAISES_BALANCE[issued.kind] else Decimal(-1)
    text = f"{issued.kind.replace('_', ' ')} {issued.number}"
    lines = [ArLine("customer", sign * issued.gross, text[:_ITEM_TEXT_LENGTH], customer=customer)]
    for rate, (net, tax) in by_rate.items():
        label = f"{text} {rate * 100:g}%"[:_ITEM_TEXT_LENGTH]
        lines.append(
            ArLine("revenue", -sign * net, label, gl_account=rules.revenue_account, tax_rate=rate)
        )
        if tax:
            lines.append(
                ArLine("tax", -sign * tax, label, gl_account=rules.tax_account, tax_rate=rate)
            )
    return ArDocument(
        reference=issued.number,
        kind=issued.kind,
        company_code=rules.company_code,
        document_type=rules.invoice_type if sign > 0 else rules.credit_type,
        document_date=issued.issue_date,
        posting_date=issued.issue_date,
        currency=issued.currency,
        header_text=f"PoTR {issued.number}"[:_HEADER_TEXT_LENGTH],
        assignment=issued.reference_number or issued.number,
        lines=tuple(lines),
    )


def payment_document(moved: PaymentMoved, *, customer: str, rules: PostingRules) -> ArDocument:
    """The FI-AR payment document of ``moved``: a payment credits the customer and debits
    the bank clearing account; a refund the other way round. Left open on the customer's
    account for SAP's clearing against invoices (the reference names our payment)."""
    sign = Decimal(-1) if moved.kind == "payment" else Decimal(1)
    text = f"{moved.kind} {moved.reference}"[:_ITEM_TEXT_LENGTH]
    lines = (
        ArLine("customer", sign * moved.amount, text, customer=customer),
        ArLine("bank", -sign * moved.amount, text, gl_account=rules.bank_account),
    )
    return ArDocument(
        reference=moved.reference,
        kind=moved.kind,
        company_code=rules.company_code,
        document_type=rules.payment_type,
        document_date=moved.booked_on,
        posting_date=moved.booked_on,
        currency=moved.currency,
        header_text=f"PoTR {moved.reference}"[:_HEADER_TEXT_LENGTH],
        assignment=moved.reference,
        lines=lines,
    )


@dataclass(frozen=True)
class PartnerDraft:
    """A customer as SAP's business partner (category ``2``, an organisation: the
    account names no person; ``FLCU01``, the customer role)."""

    external_id: str
    name: str
    category: Literal["1", "2"] = "2"
    role: str = "FLCU01"

    def __post_init__(self) -> None:
        if len(self.external_id) != EXTERNAL_ID_LENGTH:
            raise SapRefusedError(f"external id {self.external_id!r} is not 20 characters")

    @property
    def name_parts(self) -> tuple[str, str]:
        """``OrganizationBPName1`` and ``OrganizationBPName2`` (40 characters each)."""
        return (
            self.name[:_NAME_PART_LENGTH],
            self.name[_NAME_PART_LENGTH : 2 * _NAME_PART_LENGTH],
        )


def partner_draft(account: CustomerAccount) -> PartnerDraft:
    """The business partner of ``account``."""
    return PartnerDraft(partner_external_id(account.account_id), account.name.strip())


@dataclass(frozen=True)
class ArRecord:
    """An AR document as SAP holds it (its customer line, from the item read API)."""

    reference: str
    company_code: str
    fiscal_year: str
    accounting_document: str
    currency: str
    amount: Decimal
    posting_date: date | None = None
    document_type: str = ""

    @property
    def key(self) -> str:
        """``<company code>/<fiscal year>/<document>``: SAP's key of the entry."""
        return f"{self.company_code}/{self.fiscal_year}/{self.accounting_document}"


@dataclass(frozen=True)
class PartnerRecord:
    """A business partner as SAP holds it; ``customer`` its customer number (the one AR
    lines name)."""

    partner: str
    external_id: str
    customer: str
    name: str = ""


_T = TypeVar("_T")


@dataclass(frozen=True)
class Created(Generic[_T]):
    """A change set that SAP committed; ``warnings``: messages it carried anyway."""

    record: _T
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refused:
    """A change set SAP refused for its content (dead-letter it)."""

    error: SapBusinessError


@dataclass(frozen=True)
class Failed:
    """A change set SAP failed to carry out (retry it)."""

    error: SapUnavailableError


Outcome: TypeAlias = Created[_T] | Refused | Failed


class SapGateway(Protocol):
    """What the exporter and the reconciliation need of SAP, in documents. Blocking
    (run it in a thread). Whole-call failures raise :mod:`cloud.sap.errors`; a batch's
    per-document outcomes come back in order."""

    def find_partners(self, external_ids: Sequence[str]) -> Mapping[str, list[PartnerRecord]]:
        """Every business partner carrying each external id (normally one or none)."""
        ...

    def create_partners(self, drafts: Sequence[PartnerDraft]) -> list[Outcome[PartnerRecord]]:
        """Create each draft in its own change set of one ``$batch``."""
        ...

    def rename_partner(self, partner: PartnerRecord, draft: PartnerDraft) -> None:
        """Bring an existing partner's name to ``draft``'s."""
        ...

    def find_documents(
        self, company_code: str, references: Sequence[str]
    ) -> Mapping[str, list[ArRecord]]:
        """Every AR document of ``company_code`` carrying each reference."""
        ...

    def post_documents(self, documents: Sequence[ArDocument]) -> list[Outcome[ArRecord]]:
        """Post each document in its own change set of one ``$batch``."""
        ...

    def documents_posted_on(self, company_code: str, day: date) -> list[ArRecord]:
        """Every AR document of ``company_code`` with posting date ``day``."""
        ...
