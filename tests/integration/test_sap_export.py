"""SAP export against a fake SAP over real HTTP (mock-sap, corrected: tests/fakes/fake_sap)
and the ``sap`` schema on real PostgreSQL: every document and business partner exists
in SAP exactly once however SAP misbehaves, and the reconciliation says so; SAP's
refusals dead-letter with the reason; what SAP cannot hold is refused before sending.

Expected figures come from this file (the amounts each document was issued for, signed
by its kind), and SAP's holdings are read from the fake directly (plain HTTP), not
through the adapter under test.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.events.invoices import InvoiceIssued, invoice_issued_event
from cloud.events.types import CustomerAccount, customer_account_event
from cloud.migrate import migrate
from cloud.sap import SapExporter, SapSettings, reconcile, subscriptions
from cloud.sap.documents import ArDocument, ArLine, partner_external_id
from cloud.sap.errors import SapBusinessError, SapRefusedError
from cloud.sap.odata import ODataSapGateway
from cloud.sap.queue import queue_counts
from contracts.topics import Region
from tests.fakes.fake_sap import FakeSap, running_fake_sap
from tests.waiting import until

pytestmark = pytest.mark.integration

#: The documents' day: today (UTC), so the partners exported now fall on it too.
DAY = datetime.now(UTC).date()
_LOWERS = {"credit_note", "cancellation"}


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Connection[Any]]]:
    migrate(database_url, schemas={"sap"})
    pool = create_pool(database_url, max_size=4, name="sap-test")
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def fake() -> Iterator[FakeSap]:
    with running_fake_sap("--seed", "11") as fake:
        yield fake


def _settings(fake: FakeSap, **overrides: Any) -> SapSettings:
    values: dict[str, Any] = {
        "base_url": fake.base_url,
        "connect_timeout_s": 0.5,
        "read_timeout_s": 1.0,
        "retry_first_s": 0.05,
        "retry_cap_s": 0.3,
        "max_attempts": 40,
        "lease_s": 5.0,
        "poll_s": 0.05,
        "batch_size": 5,
    }
    return SapSettings(**{**values, **overrides})


def _account(region: Region, name: str) -> CustomerAccount:
    return CustomerAccount(
        account_id=f"acc_{uuid.uuid4().hex}",
        region=region,
        name=name,
        email="billing@example.com",
        plan_code="ppa",
        status="active",
    )


_CURRENCY = {Region.AU: "AUD", Region.ES: "EUR", Region.US: "USD"}
_RATE = {Region.AU: Decimal("0.10"), Region.ES: Decimal("0.21"), Region.US: Decimal("0")}


def _document(
    region: Region,
    serial: int,
    account: CustomerAccount,
    net: str,
    *,
    kind: str = "invoice",
    reference: str | None = None,
    day: date = DAY,
) -> InvoiceIssued:
    rate = _RATE[region]
    net_d = Decimal(net)
    tax = (net_d * rate).quantize(Decimal("0.01"))
    return InvoiceIssued.model_validate(
        {
            "kind": kind,
            "number": f"{region.value.upper()}-{day.year}-{serial:07d}",
            "region": region,
            "account_id": account.account_id,
            "issue_date": day,
            "due_date": day + timedelta(days=14),
            "currency": _CURRENCY[region],
            "net": net_d,
            "tax": tax,
            "gross": net_d + tax,
            "lines": [
                {
                    "description": "On-site solar",
                    "kwh": Decimal("400.5"),
                    "unit_price": net_d / Decimal("400.5"),
                    "net": net_d,
                    "tax_rate": rate,
                    "tax": tax,
                }
            ],
            "reference_number": reference,
        }
    )


async def _deliver_twice(
    pool: ConnectionPool[Connection[Any]],
    accounts: list[CustomerAccount],
    documents: list[InvoiceIssued],
) -> None:
    """Through the SAP integration's own handlers, every event delivered twice (the bus
    is at-least-once)."""
    handlers = {s.consumer: s.handler for s in subscriptions(pool)}
    events = [("sap.customers", customer_account_event(a, created=True)) for a in accounts]
    events += [("sap.invoices", invoice_issued_event(d)) for d in documents]
    for _ in range(2):
        for consumer, event in events:
            await handlers[consumer](event)


def _signed(document: InvoiceIssued) -> Decimal:
    return -document.gross if document.kind in _LOWERS else document.gross


def _held_documents(fake: FakeSap, company_code: str, number: str) -> list[dict[str, Any]]:
    return fake.odata(
        "API_OPLACCTGDOCITEMCUBE_SRV",
        "A_OperationalAcctgDocItemCube",
        **{
            "$filter": f"CompanyCode eq '{company_code}' and FinancialAccountType eq 'D'"
            f" and DocumentReferenceID eq '{number}'"
        },
    )


def _held_partners(fake: FakeSap, external_id: str) -> list[dict[str, Any]]:
    return fake.odata(
        "API_BUSINESS_PARTNER",
        "A_BusinessPartner",
        **{"$filter": f"BusinessPartnerIDByExtSystem eq '{external_id}'"},
    )


def _counts(pool: ConnectionPool[Connection[Any]]) -> dict[str, dict[str, int]]:
    with pool.connection() as conn:
        return queue_counts(conn, ("documents", "partners"))


async def test_every_document_and_partner_exists_once_despite_failures_and_reconciles(
    pool: ConnectionPool[Connection[Any]], fake: FakeSap
) -> None:
    settings = _settings(fake)
    accounts = [_account(Region.AU, f"Rooftop Owner AU {i}") for i in range(4)]
    accounts += [_account(Region.ES, f"Propietario Tejado {i}") for i in range(3)]
    documents: list[InvoiceIssued] = []
    serial = {Region.AU: 100, Region.ES: 500}
    for account in accounts:
        serial[account.region] += 1
        documents.append(_document(account.region, serial[account.region], account, "120.40"))
    # Notes and a cancellation naming the invoices they correct.
    for i, kind in enumerate(
        ["credit_note", "debit_note", "cancellation", "credit_note", "debit_note", "credit_note"]
    ):
        invoice = documents[i]
        region = invoice.region
        serial[region] += 1
        net = "120.40" if kind == "cancellation" else f"{7 + i}.35"
        documents.append(
            _document(region, serial[region], accounts[i], net, kind=kind, reference=invoice.number)
        )
    await _deliver_twice(pool, accounts, documents)
    assert _counts(pool) == {
        "documents": {"pending": len(documents)},
        "partners": {"pending": len(accounts)},
    }

    # A bad day at SAP: 20 % of requests fail, CSRF tokens expire, and writes commit but
    # answer only after the client gave up.
    fake.chaos(
        error_rate=0.2, csrf_expiry_rate=0.2, stall_rate=0.15, stall_s=settings.read_timeout_s + 0.4
    )
    stop = asyncio.Event()
    with ODataSapGateway(settings) as gateway:
        exporter = SapExporter(pool, gateway, settings)
        runner = asyncio.create_task(exporter.run(stop))
        try:
            await until(
                lambda: asyncio.to_thread(
                    lambda: (
                        _counts(pool)
                        == {
                            "documents": {"exported": len(documents)},
                            "partners": {"exported": len(accounts)},
                        }
                    )
                ),
                within_s=25,
                what="every document and partner exported",
                poll_s=0.1,
            )
        finally:
            stop.set()
            await asyncio.wait_for(runner, 10)
        injected = fake.stats()
        assert injected["errors"] > 0
        assert injected["csrf_expired"] > 0
        assert injected["stalls"] > 0, "no write timed out after committing"

        fake.chaos()  # SAP well again: read what it holds
        for account in accounts:
            assert len(_held_partners(fake, partner_external_id(account.account_id))) == 1
        for document in documents:
            code = settings.company_codes[document.region]
            held = _held_documents(fake, code, document.number)
            assert len(held) == 1, f"{document.number} is in SAP {len(held)} times"
            assert Decimal(held[0]["AmountInTransactionCurrency"]) == _signed(document)

        for region in (Region.AU, Region.ES):
            result = await asyncio.to_thread(reconcile, pool, gateway, settings, region, DAY)
            ours = [d for d in documents if d.region == region]
            assert result.ok, result.findings
            assert (result.documents_sent, result.documents_in_sap) == (len(ours), len(ours))
            partners = sum(1 for a in accounts if a.region == region)
            assert (result.partners_sent, result.partners_in_sap) == (partners, partners)
    with pool.connection() as conn:
        stored = conn.execute(
            "SELECT region, ok, missing, extra, mismatched FROM sap.reconciliations"
            " WHERE day = %s ORDER BY region",
            (DAY,),
        ).fetchall()
    assert stored == [("au", True, 0, 0, 0), ("es", True, 0, 0, 0)]


async def test_reconciliation_names_a_document_sap_lacks(
    pool: ConnectionPool[Connection[Any]], fake: FakeSap
) -> None:
    settings = _settings(fake)
    account = _account(Region.AU, "Gap Finder")
    sent = _document(Region.AU, 900, account, "10.00")
    await _deliver_twice(pool, [account], [sent])
    # Only the partner goes: the document stays queued (never sent), so SAP lacks it.
    with pool.connection() as conn:
        conn.execute("UPDATE sap.documents SET next_attempt_at = now() + interval '1 day'")
    with ODataSapGateway(settings) as gateway:
        exporter = SapExporter(pool, gateway, settings)
        await asyncio.to_thread(exporter.export_round)
        result = await asyncio.to_thread(reconcile, pool, gateway, settings, Region.AU, DAY)
    assert not result.ok
    assert [(f.kind, f.reference) for f in result.findings] == [("missing", sent.number)]


async def test_a_business_error_dead_letters_the_document_with_sap_s_reason(
    pool: ConnectionPool[Connection[Any]], fake: FakeSap
) -> None:
    settings = _settings(fake)
    closed_day = DAY.replace(day=1) - timedelta(days=1)  # last month: closed at SAP
    fake.close_periods(closed_day.strftime("%Y-%m"))
    account = _account(Region.AU, "Late Biller")
    refused = _document(Region.AU, 700, account, "55.00", day=closed_day)
    accepted = _document(Region.AU, 701, account, "56.00")
    await _deliver_twice(pool, [account], [refused, accepted])
    with ODataSapGateway(settings) as gateway:
        exporter = SapExporter(pool, gateway, settings)
        for _ in range(3):
            await asyncio.to_thread(exporter.export_round)
    with pool.connection() as conn:
        rows = dict(
            (r[0], r[1:])
            for r in conn.execute(
                "SELECT number, state, attempts, dead_reason FROM sap.documents"
            ).fetchall()
        )
    state, attempts, reason = rows[refused.number]
    assert (state, attempts) == ("dead", 1)
    assert "F5/201" in reason
    assert "Posting period" in reason
    assert "is not open" in reason
    assert rows[accepted.number][0] == "exported"
    assert _held_documents(fake, "AU01", refused.number) == []


def test_a_post_to_the_read_only_billing_documents_is_refused(fake: FakeSap) -> None:
    root = fake.base_url + "/sap/opu/odata/sap/"
    fetch = urllib.request.Request(
        root + "API_BILLING_DOCUMENT_SRV/", headers={"X-CSRF-Token": "Fetch"}
    )
    with urllib.request.urlopen(fetch, timeout=5) as response:
        token = response.headers["x-csrf-token"]
        cookie = response.headers["set-cookie"].split(";")[0]
    headers = {
        "X-CSRF-Token": token,
        "Cookie": cookie,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }

    def post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            root + path, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    status, body = post(
        "API_BILLING_DOCUMENT_SRV/A_BillingDocument",
        {"BillingDocumentType": "F2", "SoldToParty": "1000001"},
    )
    assert status == 405
    assert body["error"]["code"] == "/IWBEP/CX_MGW_NOT_IMPL_EXC"
    assert "read-only" in body["error"]["message"]["value"]
    # The same token and cookie write where SAP allows it: the refusal is the set's.
    status, _ = post(
        "API_BUSINESS_PARTNER/A_BusinessPartner",
        {"BusinessPartnerCategory": "2", "OrganizationBPName1": "Writable"},
    )
    assert status == 201
    with urllib.request.urlopen(root + "API_BILLING_DOCUMENT_SRV/$metadata", timeout=5) as meta:
        metadata = meta.read().decode()
    assert '<EntitySet Name="A_BillingDocument"' in metadata
    entity_set = metadata.split('<EntitySet Name="A_BillingDocument"', 1)[1].split("/>", 1)[0]
    assert 'sap:creatable="false"' in entity_set
    with pytest.raises(urllib.error.HTTPError) as wrong_path:
        urllib.request.urlopen(root + "API_BUSINESS_PARTNER_SRV/A_BusinessPartner", timeout=5)
    assert wrong_path.value.code == 404


def test_a_reference_too_long_for_sap_is_refused_before_sending(fake: FakeSap) -> None:
    settings = _settings(fake)
    too_long = "AU-2026-00000001"[:15] + "99"  # 17 characters
    before = len(fake.requests_log())
    with ODataSapGateway(settings) as gateway:
        with pytest.raises(SapRefusedError, match="16"):
            gateway.find_documents("AU01", [too_long])
        with pytest.raises(SapRefusedError, match="16"):
            ArDocument(
                reference=too_long,
                kind="invoice",
                company_code="AU01",
                document_type="DR",
                document_date=DAY,
                posting_date=DAY,
                currency="AUD",
                header_text="x",
                assignment="x",
                lines=(
                    ArLine("customer", Decimal("1"), "x", customer="1"),
                    ArLine("revenue", Decimal("-1"), "x", gl_account="4"),
                ),
            )
    assert len(fake.requests_log()) == before, "something reached SAP"


def test_an_error_in_a_200_answer_s_sap_message_is_a_business_error(fake: FakeSap) -> None:
    fake._call(
        "POST",
        "/_mock/faults",
        {
            "match": "A_BusinessPartner",
            "method": "GET",
            "count": 1,
            "message": {
                "code": "R1/286",
                "message": "Partner data is locked",
                "severity": "error",
                "details": [],
            },
        },
    )
    with ODataSapGateway(_settings(fake)) as gateway:
        with pytest.raises(SapBusinessError, match="locked"):
            gateway.find_partners(["AAAAAAAAAAAAAAAAAAAA"])
        assert gateway.find_partners(["AAAAAAAAAAAAAAAAAAAA"]) == {"AAAAAAAAAAAAAAAAAAAA": []}


async def test_a_renamed_customer_is_renamed_in_sap_not_created_again(
    pool: ConnectionPool[Connection[Any]], fake: FakeSap
) -> None:
    settings = _settings(fake)
    account = _account(Region.US, "Old Roof LLC")
    handlers = {s.consumer: s.handler for s in subscriptions(pool)}
    created = customer_account_event(account, created=True)
    renamed = customer_account_event(
        account.model_copy(update={"name": "New Roof LLC"}), created=False
    ).model_copy(update={"occurred_at": created.occurred_at + timedelta(seconds=1)})
    with ODataSapGateway(settings) as gateway:
        exporter = SapExporter(pool, gateway, settings)
        await handlers["sap.customers"](created)
        await asyncio.to_thread(exporter.export_round)
        await handlers["sap.customers"](renamed)
        await handlers["sap.customers"](created)  # a late redelivery of the older news
        await asyncio.to_thread(exporter.export_round)
    held = _held_partners(fake, partner_external_id(account.account_id))
    assert [(p["OrganizationBPName1"], p["BusinessPartnerIDByExtSystem"]) for p in held] == [
        ("New Roof LLC", partner_external_id(account.account_id))
    ]
    assert _counts(pool)["partners"] == {"exported": 1}


async def test_a_payment_and_a_refund_are_posted_once_each_and_reconcile(
    pool: ConnectionPool[Connection[Any]], fake: FakeSap
) -> None:
    """A payment of 150.00 credits the customer (-150.00 on its AR line), a refund of
    31.05 debits it (+31.05); each delivered twice, SAP holds each once."""
    from cloud.events.payments import PaymentMoved, payment_event

    settings = _settings(fake)
    account = _account(Region.US, "Payer & Co")
    at = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(hours=12)
    moved = [
        PaymentMoved(kind=kind, reference=ref, region=Region.US, account_id=account.account_id,
                     currency="USD", amount=Decimal(amount), at=at, booked_on=DAY,
                     provider="bank", provider_reference=f"tx-{ref}")
        for kind, ref, amount in (("payment", "US-PAY-000000041", "150.00"),
                                  ("refund", "US-RFD-000000007", "31.05"))
    ]  # fmt: skip
    handlers = {s.consumer: s.handler for s in subscriptions(pool)}
    for _ in range(2):
        await handlers["sap.customers"](customer_account_event(account, created=True))
        for m in moved:
            await handlers["sap.payments"](payment_event(m))
    with ODataSapGateway(settings) as gateway:
        exporter = SapExporter(pool, gateway, settings)
        for _ in range(3):
            await asyncio.to_thread(exporter.export_round)
        result = await asyncio.to_thread(reconcile, pool, gateway, settings, Region.US, DAY)
    for reference, signed in (("US-PAY-000000041", "-150.00"), ("US-RFD-000000007", "31.05")):
        (held,) = _held_documents(fake, "US01", reference)
        assert Decimal(held["AmountInTransactionCurrency"]) == Decimal(signed)
    assert _counts(pool)["documents"] == {"exported": 2}
    assert result.ok, result.findings
    assert result.documents_sent == 2
