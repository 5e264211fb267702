"""What each queue's rows become in SAP, as data for the one export loop
(:class:`~cloud.sap.exporter.SapExporter`): which queue, our reference SAP is queried
by, the draft to create, the gateway's query and create, how a found record is brought
up to date, and which of SAP's keys an export records. Kinds run in the order given:
business partners first (a document or service order names its customer), service
orders before their confirmations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from cloud.events.invoices import InvoiceIssued
from cloud.events.payments import PaymentMoved
from cloud.sap import repository as repo
from cloud.sap import service_repository as service_repo
from cloud.sap.documents import (
    ArDocument,
    ArRecord,
    Outcome,
    PartnerDraft,
    PartnerRecord,
    SapGateway,
    ar_document,
    payment_document,
)
from cloud.sap.errors import SapRefusedError
from cloud.sap.queue import Queue
from cloud.sap.service_documents import (
    ConfirmationDraft,
    ConfirmationRecord,
    PartLine,
    ServiceGateway,
    ServiceOrderDraft,
    ServiceOrderRecord,
    sap_priority,
)
from cloud.sap.settings import SapSettings
from contracts.topics import Region

__all__ = ["Kind", "billing_kinds", "service_kinds"]

C = TypeVar("C")
D = TypeVar("D")
R = TypeVar("R")


def _one_group(_draft: object) -> str:
    return ""


def _as_found(_record: object, _draft: object) -> None:
    return None


@dataclass(frozen=True)
class Kind(Generic[C, D, R]):
    """One kind of row sent to SAP. ``draft`` raises :class:`SapRefusedError` for a row
    SAP cannot represent; ``find`` takes a group (``group`` of the drafts: one query per
    company code) and our references; ``refresh`` brings a record SAP holds already up
    to the draft (a :class:`SapError` fails the row); ``sap_key`` is what an export
    records (:attr:`Queue.exported`'s parameters)."""

    name: str
    plural: str
    queue: Queue[Any]
    reference: Callable[[C], str]
    draft: Callable[[C], D]
    find: Callable[[str, list[str]], Mapping[str, list[R]]]
    create: Callable[[list[D]], list[Outcome[R]]]
    sap_key: Callable[[C, R], dict[str, object]]
    group: Callable[[D], str] = _one_group
    refresh: Callable[[R, D], None] = _as_found


def billing_kinds(gateway: SapGateway, settings: SapSettings) -> Sequence[Kind[Any, Any, Any]]:
    """Business partners, then documents (invoices, notes, payments, refunds)."""

    def rename(record: PartnerRecord, draft: PartnerDraft) -> None:
        if record.name != "".join(draft.name_parts):
            gateway.rename_partner(record, draft)

    def document(claim: repo.ClaimedDocument) -> ArDocument:
        rules = settings.posting_rules(Region(claim.region))
        if claim.payload.get("kind") in ("payment", "refund"):
            try:
                moved = PaymentMoved.model_validate(claim.payload)
            except ValidationError as exc:
                raise SapRefusedError(f"stored payment is not a payment: {exc}") from None
            return payment_document(moved, customer=claim.sap_customer, rules=rules)
        try:
            issued = InvoiceIssued.model_validate(claim.payload)
        except ValidationError as exc:
            raise SapRefusedError(f"stored document is not an issued document: {exc}") from None
        return ar_document(issued, customer=claim.sap_customer, rules=rules)

    partners: Kind[repo.ClaimedPartner, PartnerDraft, PartnerRecord] = Kind(
        name="partner",
        plural="partners",
        queue=repo.PARTNERS,
        reference=lambda c: c.external_id,
        draft=lambda c: PartnerDraft(c.external_id, c.name),
        find=lambda _, ids: gateway.find_partners(ids),
        create=gateway.create_partners,
        sap_key=lambda _, r: {"partner": r.partner, "customer": r.customer},
        refresh=rename,
    )
    documents: Kind[repo.ClaimedDocument, ArDocument, ArRecord] = Kind(
        name="document",
        plural="documents",
        queue=repo.DOCUMENTS,
        reference=lambda c: c.number,
        draft=document,
        find=gateway.find_documents,
        create=gateway.post_documents,
        sap_key=lambda _, r: {
            "company_code": r.company_code,
            "fiscal_year": r.fiscal_year,
            "document": r.accounting_document,
        },
        group=lambda d: d.company_code,
    )
    return (partners, documents)


def service_kinds(gateway: ServiceGateway, settings: SapSettings) -> Sequence[Kind[Any, Any, Any]]:
    """Service orders (updated when SAP's differs: rejected, never deleted), then their
    confirmations."""

    def order(claim: service_repo.ClaimedServiceOrder) -> ServiceOrderDraft:
        if claim.sold_to is None:
            raise SapRefusedError(
                f"work order {claim.reference} names no customer account:"
                " SAP's service order needs a sold-to party"
            )
        return ServiceOrderDraft(
            reference=claim.reference,
            order_type=settings.service_order_type,
            description=claim.description,
            sold_to=claim.sold_to,
            priority=sap_priority(claim.priority),
            requested_start=claim.requested_start,
            rejected=claim.rejected,
        )

    def update(record: ServiceOrderRecord, draft: ServiceOrderDraft) -> None:
        if record.differs_from(draft):
            gateway.update_service_order(record.service_order, draft)

    def confirmation(claim: service_repo.ClaimedConfirmation) -> ConfirmationDraft:
        return ConfirmationDraft(
            reference=claim.reference,
            service_order=claim.sap_service_order,
            sold_to=claim.sold_to,
            confirmation_type=settings.confirmation_type,
            description=claim.description,
            labour_product=settings.labour_product,
            labour_hours=claim.labour_hours,
            parts=tuple(PartLine(str(p["part_no"]), int(p["quantity"])) for p in claim.parts),
        )

    orders: Kind[service_repo.ClaimedServiceOrder, ServiceOrderDraft, ServiceOrderRecord] = Kind(
        name="service order",
        plural="service orders",
        queue=service_repo.SERVICE_ORDERS,
        reference=lambda c: c.reference,
        draft=order,
        find=lambda _, refs: gateway.find_service_orders(refs),
        create=gateway.create_service_orders,
        sap_key=lambda c, r: {"number": r.service_order, "rejected": c.rejected},
        refresh=update,
    )
    confirmations: Kind[service_repo.ClaimedConfirmation, ConfirmationDraft, ConfirmationRecord] = (
        Kind(
            name="service confirmation",
            plural="service confirmations",
            queue=service_repo.CONFIRMATIONS,
            reference=lambda c: c.reference,
            draft=confirmation,
            find=lambda _, refs: gateway.find_confirmations(refs),
            create=gateway.create_confirmations,
            sap_key=lambda _, r: {"number": r.confirmation},
        )
    )
    return (orders, confirmations)
