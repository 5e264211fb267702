"""mock-sap's schema, corrected where the business reference (business.md §1.4) shows it
differs from S/4HANA, plus the journal-entry shapes the SAP integration uses.

mock-sap builds its tables, ``$metadata`` and payloads from declarative registries
(``mocksap.schema.ENTITY_TYPES`` / ``SERVICES``, ``mocksap.store.VALIDATORS``); this
module edits them. It runs in the fake's own process only (``python -m
tests.fakes.fake_sap``), before the server is made, so no test process is affected.

Corrections:

- business partners live at ``API_BUSINESS_PARTNER`` (mock-sap: ``…_SRV``; the path is
  an option) and carry ``BusinessPartnerIDByExtSystem`` (BUT000-BPEXT, 20) and
  ``OrganizationBPName2``; a partner's customer number is its partner number (what a
  customer role with synchronised number ranges gives);
- ``API_BILLING_DOCUMENT_SRV`` is read-only (mock-sap accepts a POST to
  ``A_BillingDocument``; S/4HANA's only reads, cancels and renders PDFs) and its
  document has ``PurchaseOrderByCustomer``, ``DocumentReferenceID`` and
  ``BillingDocumentIsCancelled``;
- journal entries carry ``DocumentReferenceID`` (BKPF-XBLNR, 16) and their items the
  account type, assignment and the header's reference, dates and type — which the
  read-only item cube (``API_OPLACCTGDOCITEMCUBE_SRV``) serves, as S/4HANA's does;
- a posting into a closed period is refused as FI refuses it (a business error).

Service orders and confirmations: :mod:`tests.fakes.fake_sap.service_schema`.

The OData V2 create of ``A_JournalEntry`` itself is mock-sap's: S/4HANA posts journal
entries over SOAP only (see docs/sap.md); the fake keeps it as the adapter's stand-in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mocksap import schema, store
from mocksap.odata import SapError

from tests.fakes.fake_sap.service_schema import add_service_services

__all__ = ["correct"]

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def _add(type_name: str, *props: Any) -> None:
    et = schema.ENTITY_TYPES[type_name]
    have = {p.name for p in et.props}
    et.props.extend(p for p in props if p.name not in have)


def _partners(service_name: str) -> None:
    _add(
        "A_BusinessPartner",
        schema.S("BusinessPartnerIDByExtSystem", max_length=20, label="BP ID by Ext. System"),
        schema.S("OrganizationBPName2", max_length=40, label="Name 2"),
    )
    old = schema.SERVICES.pop("API_BUSINESS_PARTNER_SRV")
    schema.SERVICES[service_name] = schema.Service(
        service_name, "API_BUSINESS_PARTNER", old.title, dict(old.sets)
    )

    def customer_number(row: dict[str, Any]) -> None:
        if not row.get("Customer"):
            row["Customer"] = row["BusinessPartner"]

    store.VALIDATORS["A_BusinessPartner"] = customer_number


def _billing_documents() -> None:
    _add(
        "A_BillingDocument",
        schema.S("PurchaseOrderByCustomer", max_length=35),
        schema.S("DocumentReferenceID", max_length=16),
        schema.BOOL("BillingDocumentIsCancelled"),
    )
    schema.SERVICES["API_BILLING_DOCUMENT_SRV"].read_only = True


def _journal_entries(closed: Callable[[str], bool]) -> None:
    header_fields = ("DocumentReferenceID", "PostingDate", "DocumentDate", "AccountingDocumentType")
    _add("A_JournalEntry", schema.S("DocumentReferenceID", max_length=16, label="Reference"))
    item_props = [
        schema.S("DocumentReferenceID", max_length=16),
        schema.DT("PostingDate"),
        schema.DT("DocumentDate"),
        schema.S("AccountingDocumentType", max_length=2),
        schema.S("FinancialAccountType", max_length=1, label="Account Type"),
        schema.S("AssignmentReference", max_length=18, label="Assignment"),
    ]
    _add("A_JournalEntryItem", *item_props)
    _add("A_OperationalAcctgDocItemCube", *item_props)
    # The header's reference, dates and type reach its items the way its keys do, so
    # the cube (a view over the items) can be filtered by them.
    entry = schema.ENTITY_TYPES["A_JournalEntry"]
    keys = [
        ("AccountingDocument", "AccountingDocument"),
        ("CompanyCode", "CompanyCode"),
        ("FiscalYear", "FiscalYear"),
    ]
    entry.navs = [
        schema.Nav(
            "to_JournalEntryItem", "A_JournalEntryItem", "*", keys + [(f, f) for f in header_fields]
        )
    ]

    def posting_period_open(row: dict[str, Any]) -> None:
        posted = str(row.get("PostingDate") or "")[:7]  # YYYY-MM
        if posted and closed(posted):
            year, month = posted.split("-")
            raise SapError(
                f"Posting period {int(month):03d} {year} is not open"
                f" ({_MONTHS[int(month) - 1]} {year}, company code {row.get('CompanyCode')})",
                400,
                code="F5/201",
                target="PostingDate",
            )

    store.VALIDATORS["A_JournalEntry"] = posting_period_open


def correct(*, partner_service: str, closed: Callable[[str], bool]) -> None:
    """Apply the corrections; ``closed("2026-02")`` says whether a period is closed."""
    _partners(partner_service)
    _billing_documents()
    _journal_entries(closed)
    add_service_services()
