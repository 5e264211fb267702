"""The billing service's part of a privacy request: the account's documents (invoices,
credit and debit notes, cancellations) with their amounts and lines (the billed kWh
per tariff period), its payments and refunds, out. On
erasure billing erases nothing: tax law keeps issued documents and the payments that
settle them (⚠ unverified: AU 5 years, ITAA 1936 s 262A; ES 4 years under the Ley
General Tributaria art. 66, 6 for the Código de Comercio art. 30; US by state, commonly
3-7 years). They name the account only by its opaque id and the site by its number —
the name and address on a document's PDF are drawn from customers when it is rendered,
so after an erasure they read as the pseudonym."""

from __future__ import annotations

from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.personal_data import Erasure, Export
from contracts.topics import Region

__all__ = ["BillingPersonalData"]


class BillingPersonalData:
    service = "billing"

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def export(self, region: Region, account_id: str) -> Export:
        args = (region.value, account_id)
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            documents = cur.execute(
                "SELECT number, kind, site_id, first_day, last_day, plan_code, plans,"
                " currency, net, tax, gross, state, issue_date, due_date FROM billing.invoices"
                " WHERE region = %s AND account_id = %s ORDER BY issued_at, id",
                args,
            ).fetchall()
            lines = cur.execute(
                "SELECT i.number, l.line_no, l.description_key, l.first_day, l.last_day,"
                " l.period, l.plan_code, l.kwh, l.unit_price, l.base, l.percent, l.net,"
                " l.tax, l.tax_percent FROM billing.invoice_lines l"
                " JOIN billing.invoices i ON i.id = l.invoice_id"
                " WHERE i.region = %s AND i.account_id = %s ORDER BY i.issued_at, i.id, l.line_no",
                args,
            ).fetchall()
            refunds = cur.execute(
                "SELECT amount, currency, refunded_at FROM billing.refunds"
                " WHERE region = %s AND account_id = %s ORDER BY refunded_at, id",
                args,
            ).fetchall()
            payments = cur.execute(
                "SELECT amount, currency, received_at, provider, provider_reference"
                " FROM billing.payments WHERE region = %s AND account_id = %s"
                " ORDER BY received_at, id",
                args,
            ).fetchall()
        return {
            "documents": documents,
            "document_lines": lines,
            "payments": payments,
            "refunds": refunds,
        }

    def erase(self, region: Region, account_id: str) -> Erasure:
        share = self.export(region, account_id)
        return Erasure(self.service, kept={k: len(v) for k, v in share.items()})
