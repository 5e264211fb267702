"""Bills in the web UI (issue 19 point 6) on ``api_world``'s fleet: each account has one
invoice seeded as billing stores one (:func:`tests.integration.api_world.seed_bill`):
100 kWh at 0.25 = 25.00 net, GST 10 % = 2.50, 27.50 gross; 10.00 paid, so 17.50
outstanding and owed. The customer's pages show exactly these figures, formatted in the
viewer's language, and nothing of another account; support's view of a customer's bills
is the customer's, and every such view is in the audit log before it is answered.

Each document's PDF and its usage by period (issue 19 points 3 and 6), read back with
pypdf and compared with figures computed here by hand. Seeded as billing stores them,
for account E (es, EUR, Europe/Madrid, plan ``es-ppa-20td`` on the 2.0TD periods):
invoice ES-2026-0000101 for September 2026 — P1 1,240.6 kWh at 0.50 = 620.30, P2 1,600
kWh at 0.25 = 400.00; net 1,020.30, IVA 21 % of it 214.263 → 214.26, gross 1,234.56,
due 16 October — from four ledger hours (local time, CEST): Tue 1 Sep 10-11 h (P1)
620.3 kWh, Wed 2 Sep 10-11 h (P1) 620.3 kWh and 8-9 h (P2) 600 kWh, Thu 3 Sep 14-15 h
(P2) 1,000 kWh. A true-up then read 900 kWh for Thu 14-15 h: credit note
ES-2026-0000102 for P2 100 kWh at 0.25 = 25.00, IVA 5.25, 30.25, naming the invoice.
Account E's month table: September P1 1,240.6 and P2 1,600 - 100 = 1,500 kWh; October
(api_world's seeded bill) 100 kWh single rate.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from cloud.adapters.postgres import Connection
from cloud.billing import UsageReader
from cloud.customers import AccountPatch, CustomersService
from cloud.customers.zones import TARIFF_ZONES
from cloud.identity import Role
from cloud.notify import NotificationService, NotifySettings, PreferencesIn
from cloud.portal import ViewAudit
from cloud.scope import Scope
from contracts.topics import Region
from tests.api_tokens import bearer, mint_token
from tests.integration.api_world import Pool, Tenant, World, page_client, private_world

pytestmark = pytest.mark.integration

INVOICE = "ES-2026-0000101"
NOTE = "ES-2026-0000102"
CANCELLATION = "ES-2026-0000103"
MWH_PER_KWH = 1_000_000


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    key_dir: Path = tmp_path_factory.mktemp("bills")
    with private_world(postgres_server_url, key_dir) as built:
        _seed(built.pool, built.tenants["E"])
        yield built


def test_a_customer_sees_its_bill_outstanding_balance_and_payment(world: World) -> None:
    a, b = world.tenants["A"], world.tenants["B"]
    with page_client(world, Role.CUSTOMER) as client:
        page = client.get("/ui/au/bills", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.text
    assert f'data-document="{a.bill}"' in html
    assert b.bill not in html
    assert (
        'data-metric="gross" data-value="27.50"><span class="cell-label">Total: </span>A$27.50'
        in html
    )
    assert 'data-value="17.50"><span class="cell-label">Outstanding: </span>A$17.50' in html
    assert '<div data-currency="AUD" data-value="17.50"><dt>To pay</dt><dd>A$17.50</dd>' in html
    assert "A$10.00" in html


def test_a_bills_page_shows_its_lines_and_taxes_in_the_viewers_language(world: World) -> None:
    a, b = world.tenants["A"], world.tenants["B"]
    with page_client(world, Role.CUSTOMER) as client:
        english = client.get(f"/ui/au/bills/{a.bill}", headers={"Accept-Language": "en"}).text
        spanish = client.get(f"/ui/au/bills/{a.bill}", headers={"Accept-Language": "es"}).text
        assert client.get(f"/ui/au/bills/{b.bill}").status_code == 404
    assert "100.000 kWh" in english
    assert "A$0.25 per kWh" in english
    assert "GST 10.00 %" in english
    assert "A$2.50" in english
    assert "A$25.00" in english
    assert "A$17.50" in english
    assert "100,000 kWh" in spanish
    assert "0,25\xa0AUD por kWh" in spanish
    assert "27,50\xa0AUD" in spanish
    assert "Pendiente de pago" in spanish


def test_a_line_of_a_prorated_bill_names_its_plan(world: World) -> None:
    """A document whose period spans a plan change names each energy line's plan
    (decision 150), in the viewer's language."""
    a = world.tenants["A"]
    update = (
        "UPDATE billing.invoice_lines SET plan_code = %s WHERE invoice_id ="
        " (SELECT id FROM billing.invoices WHERE number = %s)"
    )
    with world.pool.connection() as conn:
        conn.execute(update, ("au-ppa-tou", a.bill))
    try:
        with page_client(world, Role.CUSTOMER) as client:
            english = client.get(f"/ui/au/bills/{a.bill}", headers={"Accept-Language": "en"})
            spanish = client.get(f"/ui/au/bills/{a.bill}", headers={"Accept-Language": "es"})
    finally:
        with world.pool.connection() as conn:
            conn.execute(update, (None, a.bill))
    assert "Energy, plan au-ppa-tou" in english.text
    assert "Energía, plan au-ppa-tou" in spanish.text


def test_support_sees_a_customers_bills_and_each_view_is_audited(world: World) -> None:
    b, e = world.tenants["B"], world.tenants["E"]
    audit = ViewAudit(world.pool)
    with page_client(world, Role.SUPPORT) as client:
        listing = client.get(f"/ui/au/customers/{b.account}/bills")
        one = client.get(f"/ui/au/customers/{b.account}/bills/{b.bill}")
        before = len(audit.recent(Scope.of_region(Region.AU), account_id=b.account))
        assert client.get(f"/ui/au/customers/{b.account}/bills/{e.bill}").status_code == 404
        assert client.get(f"/ui/au/customers/{e.account}/bills").status_code == 404
        sites = client.get(f"/ui/au/customers/{b.account}").text
    assert listing.status_code == 200
    assert one.status_code == 200
    assert "read only" in listing.text
    assert f'data-document="{b.bill}"' in listing.text
    assert "A$27.50" in one.text
    assert f'href="/ui/au/customers/{b.account}/bills"' in sites
    views = audit.recent(Scope.of_region(Region.AU), account_id=b.account)
    # Newest first: the customer's sites page, the bill, the list; the refused ones not.
    assert [v.what for v in views[:3]] == [
        "customer.sites",
        f"customer.bill {b.bill}",
        "customer.bills",
    ]
    assert all(v.actor_role == Role.SUPPORT for v in views[:3])
    assert len(views) == before + 1


# -- PDFs and usage by period -----------------------------------------------------------
def _document(conn: Connection[Any], t: Tenant, number: str, kind: str, money: tuple[str, str, str],
              reference: int | None) -> int:  # fmt: skip
    net, tax, gross = money
    row = conn.execute(
        "INSERT INTO billing.invoices (number, kind, region, account_id, site_id,"
        " first_day, last_day, plan_code, tariff_zone, time_zone, contract_start, currency,"
        " net, tax, gross, reference_id, issued_at, issue_date, due_date) VALUES"
        " (%s, %s, 'es', %s, %s, '2026-09-01', '2026-09-30', 'es-ppa-20td', 'peninsula',"
        " 'Europe/Madrid', '2026-01-01', 'EUR', %s, %s, %s, %s, '2026-10-02T06:00Z',"
        " '2026-10-02', '2026-10-16') RETURNING id",
        (number, kind, t.account, t.site, net, tax, gross, reference),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _line(
    conn: Connection[Any], doc: int, no: int, period: str, kwh: str, price: str, net: str
) -> None:
    conn.execute(
        "INSERT INTO billing.invoice_lines (invoice_id, line_no, description_key, first_day,"
        " last_day, period, kwh, unit_price, net, tax, tax_percent) VALUES"
        " (%s, %s, 'energy', '2026-09-01', '2026-09-30', %s, %s, %s, %s, 'iva', 21)",
        (doc, no, period, kwh, price, net),
    )


def _hour(conn: Connection[Any], t: Tenant, start_utc: str, kwh: int | Decimal, doc: int) -> int:
    mwh = int(Decimal(kwh) * MWH_PER_KWH)
    row = conn.execute(
        "INSERT INTO billing.ledger_lines (region, site_id, hour_start, hour_end, forward_mwh,"
        " reverse_mwh, export_mwh, pool_used_mwh, billable_mwh, estimated, billing_meter,"
        " invoice_id) VALUES ('es', %s, %s::timestamptz, %s::timestamptz + interval '1 hour',"
        " %s, 0, 0, 0, %s, false, 'M-1', %s) RETURNING id",
        (t.site, start_utc, start_utc, mwh, mwh, doc),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _seed(pool: Pool, t: Tenant) -> None:
    with pool.connection() as conn:
        invoice = _document(conn, t, INVOICE, "invoice", ("1020.30", "214.26", "1234.56"), None)
        _line(conn, invoice, 1, "P1", "1240.6", "0.5", "620.30")
        _line(conn, invoice, 2, "P2", "1600", "0.25", "400.00")
        conn.execute(
            "INSERT INTO billing.invoice_taxes (invoice_id, tax, percent, base, amount)"
            " VALUES (%s, 'iva', 21, 1020.30, 214.26)",
            (invoice,),
        )
        # CEST is UTC+2: local 10 h is 08 h UTC.
        _hour(conn, t, "2026-09-01T08:00Z", Decimal("620.3"), invoice)
        _hour(conn, t, "2026-09-02T08:00Z", Decimal("620.3"), invoice)
        _hour(conn, t, "2026-09-02T06:00Z", 600, invoice)
        thursday = _hour(conn, t, "2026-09-03T12:00Z", 1000, invoice)
        # A cancellation reads its invoice's hours (written without lines of its own, so
        # the month table below is the invoice's and the note's alone).
        _document(conn, t, CANCELLATION, "cancellation", ("0.00", "0.00", "0.00"), invoice)
        note = _document(conn, t, NOTE, "credit_note", ("25.00", "5.25", "30.25"), invoice)
        _line(conn, note, 1, "P2", "100", "0.25", "25.00")
        conn.execute(
            "INSERT INTO billing.invoice_taxes (invoice_id, tax, percent, base, amount)"
            " VALUES (%s, 'iva', 21, 25.00, 5.25)",
            (note,),
        )
        # The true-up: the old hour points at its replacement (deferred) before it exists.
        replacement = conn.execute("SELECT nextval('billing.ledger_lines_id_seq')").fetchone()
        assert replacement is not None
        conn.execute(
            "UPDATE billing.ledger_lines SET superseded_by = %s WHERE id = %s",
            (replacement[0], thursday),
        )
        conn.execute(
            "INSERT INTO billing.ledger_lines (id, region, site_id, hour_start, hour_end,"
            " forward_mwh, reverse_mwh, export_mwh, pool_used_mwh, billable_mwh, estimated,"
            " billing_meter, invoice_id) VALUES (%s, 'es', %s, '2026-09-03T12:00Z',"
            " '2026-09-03T13:00Z', %s, 0, 0, 0, %s, false, 'M-1', %s)",
            (replacement[0], t.site, 900 * MWH_PER_KWH, 900 * MWH_PER_KWH, note),
        )


def _text(pdf: bytes) -> str:
    """The PDF's text, one space for any run of white space (Babel's no-break spaces too)."""
    pages = PdfReader(BytesIO(pdf)).pages
    return re.sub(r"\s+", " ", " ".join(p.extract_text() for p in pages).replace("\xa0", " "))


@pytest.fixture
def e_headers(world: World) -> dict[str, str]:
    return bearer(Role.CUSTOMER, region=Region.ES, account_id=world.tenants["E"].account)


def test_a_documents_usage_is_its_ledger_per_day_and_tariff_period(world: World) -> None:
    e = world.tenants["E"]
    reader = UsageReader(world.pool, zones=TARIFF_ZONES)
    scope = Scope.of_account(Region.ES, e.account)
    invoice = reader.document(INVOICE, scope=scope)
    assert invoice is not None
    assert invoice.periods == ["P1", "P2"]
    assert [(d.day, d.period, d.kwh) for d in invoice.days] == [
        (date(2026, 9, 1), "P1", Decimal("620.300000")),
        (date(2026, 9, 2), "P2", Decimal("600.000000")),
        (date(2026, 9, 2), "P1", Decimal("620.300000")),
        (date(2026, 9, 3), "P2", Decimal("1000.000000")),
    ]
    cancellation = reader.document(CANCELLATION, scope=scope)
    assert cancellation is not None
    assert cancellation.days == invoice.days
    note = reader.document(NOTE, scope=scope)
    assert note is not None
    assert [(d.day, d.period, d.kwh) for d in note.days] == [
        (date(2026, 9, 3), "P2", Decimal("100.000000"))
    ]
    months = reader.months(e.account, scope=scope)
    assert [(m.month, m.period, m.kwh) for m in months] == [
        (date(2026, 9, 1), "P1", Decimal("1240.600000")),
        (date(2026, 9, 1), "P2", Decimal("1500.000000")),
        (date(2026, 10, 1), "flat", Decimal("100.000000")),
    ]
    # Another account's scope reaches nothing.
    other = Scope.of_account(Region.ES, world.tenants["A"].account)
    assert reader.document(INVOICE, scope=other) is None
    assert reader.months(e.account, scope=other) == []


def test_the_invoice_pdf_is_in_spanish_for_a_spanish_customer(
    world: World, e_headers: dict[str, str]
) -> None:
    with TestClient(world.app) as client:
        answer = client.get(f"/api/v1/es/documents/{INVOICE}/pdf", headers=e_headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == f'attachment; filename="{INVOICE}.pdf"'
    text = _text(answer.content)
    for expected in [
        f"Factura {INVOICE}",
        "Fecha de emisión 2 de octubre de 2026",
        "Fecha de vencimiento 16 de octubre de 2026",
        "1 de septiembre de 2026 \u2013 30 de septiembre de 2026",
        f"Cuenta {world.tenants['E'].account}",
        f"Instalación {world.tenants['E'].site}",
        "Energía, periodo P1 1.240,600 kWh 0,50 € por kWh 620,30 €",
        "Energía, periodo P2 1.600,000 kWh 0,25 € por kWh 400,00 €",
        "IVA 21,00 % 1.020,30 € 214,26 €",
        "Total 1.234,56 €",
        "Total a pagar antes del 16 de octubre de 2026",
        "Consumo por periodo tarifario",
        "P1 1.240,600 P2 1.600,000 Total 2.840,600",
        "kWh facturados por día",
    ]:
        assert expected in text, expected


def test_the_same_invoice_in_english_on_request(world: World, e_headers: dict[str, str]) -> None:
    with TestClient(world.app) as client:
        answer = client.get(
            f"/api/v1/es/documents/{INVOICE}/pdf", params={"language": "en"}, headers=e_headers
        )
        refused = client.get(
            f"/api/v1/es/documents/{INVOICE}/pdf", params={"language": "fr"}, headers=e_headers
        )
    assert refused.status_code == 422
    text = _text(answer.content)
    for expected in [
        f"Invoice {INVOICE}",
        "Issue date October 2, 2026",
        "Energy, P1 period 1,240.600 kWh €0.50 per kWh €620.30",
        "IVA 21.00 % €1,020.30 €214.26",
        "Total €1,234.56",
        "Total to pay by October 16, 2026",
        "P1 1,240.600 P2 1,600.000 Total 2,840.600",
        "Billed kWh per day",
    ]:
        assert expected in text, expected


def test_a_credit_note_pdf_names_its_invoice_and_its_usage(
    world: World, e_headers: dict[str, str]
) -> None:
    with TestClient(world.app) as client:
        answer = client.get(f"/api/v1/es/documents/{NOTE}/pdf", headers=e_headers)
    text = _text(answer.content)
    for expected in [
        f"Nota de abono {NOTE}",
        f"Rectifica {INVOICE}",
        "Energía, periodo P2 100,000 kWh 0,25 € por kWh 25,00 €",
        "Total 30,25 €",
        "Abonado en su cuenta",
        "P2 100,000 Total 100,000",
    ]:
        assert expected in text, expected


def test_an_australian_customers_pdf_is_english_and_another_accounts_is_refused(
    world: World,
) -> None:
    a, b = world.tenants["A"], world.tenants["B"]
    with TestClient(world.app) as client:
        mine = client.get(
            f"/api/v1/au/documents/{a.bill}/pdf", headers=world.headers(Role.CUSTOMER)
        )
        theirs = client.get(
            f"/api/v1/au/documents/{b.bill}/pdf", headers=world.headers(Role.CUSTOMER)
        )
    assert theirs.status_code == 404
    text = _text(mine.content)
    # api_world's bill: 100 kWh at 0.25 = 25.00, GST 10 % 2.50, 27.50, single rate.
    assert f"Invoice {a.bill}" in text
    assert "Energy 100.000 kWh A$0.25 per kWh A$25.00" in text
    assert "GST 10.00 % A$25.00 A$2.50" in text
    assert "Total A$27.50" in text
    assert "Single rate 100.000 Total 100.000" in text


def test_the_bill_pages_show_usage_by_period_and_link_the_pdf(world: World) -> None:
    e = world.tenants["E"]
    token = mint_token(Role.CUSTOMER, region=Region.ES, account_id=e.account)
    with TestClient(world.app, base_url="https://testserver") as client:
        client.cookies.set("potr_session", token)
        listing = client.get("/ui/es/bills", headers={"Accept-Language": "es"}).text
        one = client.get(f"/ui/es/bills/{INVOICE}", headers={"Accept-Language": "es"}).text
        pdf = client.get(f"/ui/es/bills/{INVOICE}/pdf")
    assert '<tr data-month="2026-09">' in listing
    assert '<td data-period="P1" data-value="1240.600000">' in listing
    assert '<td data-period="P2" data-value="1500.000000">' in listing
    assert "1.500,000 kWh" in listing
    assert "septiembre 2026" in listing
    assert f'href="/ui/es/bills/{INVOICE}/pdf"' in one
    assert (
        '<tr data-period="P1"><th scope="row">P1</th>'
        '<td data-metric="kwh" data-value="1240.600000">' in one
    )
    assert '<tr data-day="2026-09-02">' in one
    assert "Consumo por periodo tarifario" in one
    assert pdf.status_code == 200
    assert "Factura" in _text(pdf.content)


def test_support_downloads_a_customers_pdf_and_it_is_audited(world: World) -> None:
    b, e = world.tenants["B"], world.tenants["E"]
    audit = ViewAudit(world.pool)
    token = mint_token(Role.SUPPORT, region=Region.AU)
    with TestClient(world.app, base_url="https://testserver") as client:
        client.cookies.set("potr_session", token)
        pdf = client.get(f"/ui/au/customers/{b.account}/bills/{b.bill}/pdf")
        before = len(audit.recent(Scope.of_region(Region.AU), account_id=b.account))
        assert client.get(f"/ui/au/customers/{b.account}/bills/{e.bill}/pdf").status_code == 404
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    views = audit.recent(Scope.of_region(Region.AU), account_id=b.account)
    assert views[0].what == f"customer.bill.pdf {b.bill}"
    assert views[0].actor_role == Role.SUPPORT
    assert len(views) == before


def test_the_pdf_is_in_the_language_the_customers_person_chose(world: World) -> None:
    """B (au, so English by default) has a person who chose Spanish in their notification
    settings: B's PDF is in Spanish, with B's name, even when support downloads it."""
    b = world.tenants["B"]
    user = f"usr_{uuid.uuid4().hex}"
    customers = CustomersService(world.pool)
    customers.update_account(b.account, AccountPatch(user_id=user))
    NotificationService(world.pool, NotifySettings()).set_preferences(
        user, PreferencesIn(language="es")
    )
    name = customers.get_account(b.account)
    assert name is not None
    with TestClient(world.app) as client:
        answer = client.get(f"/api/v1/au/documents/{b.bill}/pdf", headers=world.headers("support"))
    text = _text(answer.content)
    assert f"Factura {b.bill}" in text
    assert f"Cliente {name.name}" in text
    assert "Total 27,50 AUD" in text


SERVICE = "ES-2026-0000150"


def _seed_service_invoice(pool: Pool, t: Tenant) -> None:
    """A service invoice of work order 4321 as billing stores one (issue 19 point 4):
    2 x ES-ISO at 30.00 = 60.00; 95 min at 45.00 an hour = 71.25; net 131.25, IVA 21 %
    27.5625 -> 27.56, gross 158.81."""
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO billing.invoices (number, kind, region, account_id, site_id,"
            " first_day, last_day, plan_code, tariff_zone, time_zone, contract_start,"
            " currency, net, tax, gross, issued_at, issue_date, due_date, work_order_id)"
            " VALUES (%s, 'invoice', 'es', %s, %s, '2026-11-04', '2026-11-04', 'service',"
            " 'peninsula', 'Europe/Madrid', '2026-11-04', 'EUR', 131.25, 27.56, 158.81,"
            " '2026-11-04T12:00Z', '2026-11-04', '2026-11-18', 4321) RETURNING id",
            (SERVICE, t.account, t.site),
        ).fetchone()
        assert row is not None
        conn.cursor().executemany(
            "INSERT INTO billing.invoice_lines (invoice_id, line_no, description_key,"
            " first_day, last_day, unit_price, quantity, item, net, tax, tax_percent)"
            " VALUES (%s, %s, %s, '2026-11-04', '2026-11-04', %s, %s, %s, %s, 'IVA', 21)",
            [
                (row[0], 1, "part", Decimal("30.00"), 2, "ES-ISO Seccionador CC", Decimal("60")),
                (row[0], 2, "labour", Decimal("45.00"), 95, None, Decimal("71.25")),
            ],
        )
        conn.execute(
            "INSERT INTO billing.invoice_taxes (invoice_id, tax, percent, base, amount)"
            " VALUES (%s, 'IVA', 21, 131.25, 27.56)",
            (row[0],),
        )


def test_a_service_invoice_is_listed_naming_its_work_order(world: World) -> None:
    """Last in the module: it adds a document to E's account."""
    e = world.tenants["E"]
    _seed_service_invoice(world.pool, e)
    token = mint_token(Role.CUSTOMER, region=Region.ES, account_id=e.account)
    with TestClient(world.app, base_url="https://testserver") as client:
        client.cookies.set("potr_session", token)
        listing = client.get("/ui/es/bills", headers={"Accept-Language": "es"}).text
        one = client.get(f"/ui/es/bills/{SERVICE}", headers={"Accept-Language": "en"}).text
        pdf = client.get(f"/ui/es/bills/{SERVICE}/pdf?language=es")
    row = re.search(rf'<tr data-document="{SERVICE}"[^>]*>.*?</tr>', listing, re.S)
    assert row is not None
    assert 'data-work-order="4321"' in row.group(0)
    assert f"Factura de servicio {SERVICE}" in row.group(0)
    assert "Orden de trabajo 4321" in row.group(0)
    assert 'data-value="158.81"' in row.group(0)
    assert '<tr data-month="2026-11">' not in listing  # no energy billed by it
    assert f"Service invoice {SERVICE}" in one
    assert "Work order 4321" in one
    assert "Part ES-ISO Seccionador CC" in one
    assert "€30.00" in one
    assert "95 min" in one
    assert "€45.00 per hour" in one
    assert "€71.25" in one
    assert "€27.56" in one
    assert pdf.status_code == 200
    text = _text(pdf.content)
    assert "Pieza ES-ISO Seccionador CC 2 30,00 € 60,00 €" in text
    assert "Mano de obra en la instalación 95 min 45,00 € por hora 71,25 €" in text
    assert "Total 158,81 €" in text
