"""Report pages and downloads (issue 20 point 4) on ``api_world`` with the reports'
seed (:mod:`tests.integration.reports_seed`: figures worked out by hand there) for au,
September 2026 — a month in which the world itself holds no invoice, job or alarm.
Each page's table shows the hand-computed figures, and its CSV and PDF (the page's own
download links; the PDF read back with pypdf) hold exactly the page's numbers; the REST
route answers the same cells. Operators reach the fleet, alerts and MOSIE reports, not
revenue; support reads its own report alone; support's tickets per 1,000 customers
(:mod:`tests.integration.support_seed`) on the queue page and its REST route."""

from __future__ import annotations

import csv
import io
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from cloud.bootstrap import create_api, open_remote_reports
from cloud.identity import Role
from cloud.portal import PortalSettings
from contracts.topics import Region
from tests.api_tokens import api_settings, mint_token
from tests.integration.api_world import World, page_client, private_world
from tests.integration.reports_seed import (
    ALERTS,
    ALERTS_ACROSS,
    ALERTS_ACROSS_TOTAL,
    ALERTS_TOTAL,
    MOSIE,
    MOSIE_ACROSS,
    MOSIE_ACROSS_TOTAL,
    MOSIE_TOTAL,
    REVENUE,
    REVENUE_TOTAL,
    seed,
)
from tests.integration.support_seed import RATES, SUPPORT, SUPPORT_TOTAL, seed_support

pytestmark = pytest.mark.integration

MONTH = "2026-09"
_ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.S)
_CELL = re.compile(
    r'<t[hd][^>]*data-column="[^"]+"[^>]*>(?:<span class="cell-label">[^<]*</span>)?([^<]*)</t[hd]>'
)


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    key_dir: Path = tmp_path_factory.mktemp("reports")
    with private_world(postgres_server_url, key_dir) as built:
        seed(built.pool)
        seed_support(built.pool)
        yield built


@pytest.fixture(scope="module")
def admin(world: World) -> Iterator[TestClient]:
    with page_client(world, Role.ADMIN) as client:
        yield client


def _page_rows(html: str) -> list[list[str]]:
    table = html[html.index('<table class="devices" id="report"') :]
    table = table[: table.index("</table>")]
    rows = [_CELL.findall(r) for r in _ROW.findall(table)]
    return [r for r in rows if r]


def _pdf_words(pdf: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.parametrize(
    ("name", "body", "total"),
    [
        ("revenue", REVENUE, REVENUE_TOTAL),
        ("mosie", MOSIE, MOSIE_TOTAL),
        ("alerts", ALERTS, ALERTS_TOTAL),
        ("support", SUPPORT, SUPPORT_TOTAL),
    ],
)
def test_the_page_its_csv_and_its_pdf_hold_the_same_figures(
    admin: TestClient, name: str, body: list[list[str]], total: list[str]
) -> None:
    url = f"/ui/au/reports/{name}?month={MONTH}"
    page = admin.get(url, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    shown = _page_rows(page.text)
    assert shown == [*body, total]
    assert "<svg" in page.text
    assert f"{url}&amp;format=csv" in page.text
    got_csv = admin.get(f"{url}&format=csv")
    assert got_csv.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(got_csv.text)))[1:] == shown
    got_pdf = admin.get(f"{url}&format=pdf")
    assert got_pdf.headers["content-type"] == "application/pdf"
    words = _pdf_words(got_pdf.content)
    for row in shown:
        assert " ".join(c for c in row if c) in words, row


def test_the_fleet_page_matches_its_downloads_in_spanish(admin: TestClient) -> None:
    url = f"/ui/au/reports/fleet?month={MONTH}"
    page = admin.get(url, headers={"Accept-Language": "es"})
    assert page.status_code == 200
    assert "Energía y disponibilidad de la flota" in page.text
    shown = _page_rows(page.text)
    assert len(shown) == 31
    assert shown[-1][0] == "total"
    assert list(csv.reader(io.StringIO(admin.get(f"{url}&format=csv").text)))[1:] == shown
    assert " ".join(shown[-1]) in _pdf_words(admin.get(f"{url}&format=pdf").content)


def test_a_month_that_is_not_one_is_refused_with_the_reason(admin: TestClient) -> None:
    page = admin.get("/ui/au/reports/alerts?month=2026-13")
    assert page.status_code == 422
    assert 'id="refusal"' in page.text


def test_operators_read_the_fleet_not_the_money(world: World) -> None:
    with page_client(world, Role.OPERATOR) as client:
        index = client.get(f"/ui/au/reports?month={MONTH}")
        assert index.status_code == 200
        assert 'data-report="fleet"' in index.text
        assert 'data-report="revenue"' not in index.text
        assert client.get(f"/ui/au/reports/revenue?month={MONTH}").status_code == 403
    api = TestClient(world.app, base_url="https://testserver")
    operator = world.headers(Role.OPERATOR)
    answer = api.get(f"/api/v1/au/reports/alerts?month={MONTH}", headers=operator)
    assert answer.status_code == 200
    assert [list(r.values()) for r in answer.json()["rows"]] == ALERTS
    assert answer.json()["totals"] == [
        dict(zip(answer.json()["columns"], ALERTS_TOTAL, strict=True))
    ]
    refused = api.get(f"/api/v1/au/reports/revenue?month={MONTH}", headers=operator)
    assert refused.status_code == 403
    bad = api.get("/api/v1/au/reports/alerts?month=September", headers=operator)
    assert bad.status_code == 422


def test_across_every_region_the_page_its_csv_its_pdf_and_the_api_agree(
    world: World, admin: TestClient
) -> None:
    index = admin.get(f"/ui/au/reports?month={MONTH}", headers={"Accept-Language": "es"})
    assert 'id="reports-across"' in index.text
    assert "En todas las regiones" in index.text
    url = f"/ui/au/reports/all/mosie?month={MONTH}"
    page = admin.get(url, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "AU + US + ES" in page.text
    assert "<svg" in page.text
    shown = _page_rows(page.text)
    assert shown == [*MOSIE_ACROSS, MOSIE_ACROSS_TOTAL]
    got_csv = admin.get(f"{url}&format=csv")
    assert 'filename="mosie-all-2026-09.csv"' in got_csv.headers["content-disposition"]
    assert list(csv.reader(io.StringIO(got_csv.text)))[1:] == shown
    words = _pdf_words(admin.get(f"{url}&format=pdf").content)
    for row in shown:
        assert " ".join(c for c in row if c) in words, row
    assert admin.get(f"/ui/au/reports/all/nothing?month={MONTH}").status_code == 404

    api = TestClient(world.app, base_url="https://testserver")
    answer = api.get(
        f"/api/v1/es/reports/all/alerts?month={MONTH}", headers=world.headers(Role.ADMIN)
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["name"], body["region"]) == ("alerts", "all")
    assert [list(r.values()) for r in body["rows"]] == ALERTS_ACROSS
    assert [list(t.values()) for t in body["totals"]] == [ALERTS_ACROSS_TOTAL]


def test_across_every_region_is_refused_to_a_single_region_scope(world: World) -> None:
    with page_client(world, Role.OPERATOR) as client:
        assert 'id="reports-across"' not in client.get(f"/ui/au/reports?month={MONTH}").text
        assert client.get(f"/ui/au/reports/all/alerts?month={MONTH}").status_code == 403
    api = TestClient(world.app, base_url="https://testserver")
    answer = api.get(
        f"/api/v1/au/reports/all/alerts?month={MONTH}", headers=world.headers(Role.OPERATOR)
    )
    assert answer.status_code == 403


@pytest.fixture
def hung_gateway() -> Iterator[str]:
    """A gateway that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_pinned_process_names_the_regions_that_did_not_answer(
    world: World, hung_gateway: str
) -> None:
    # A process pinned to au (a database per region): au's table is its own, us's and
    # es's are asked of the gateway, which never answers — no partial total.
    given = api_settings("postgresql://unused").model_dump()
    given |= {
        "api_region": Region.AU, "reports_gateway_url": hung_gateway,
        "reports_gateway_timeout_s": 0.2,
    }  # fmt: skip
    settings = PortalSettings(**given)
    with open_remote_reports(settings) as remote:
        app = create_api(settings, world.pool, web=world.web, remote_reports=remote)
        page = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
        page.cookies.set("potr_session", mint_token(Role.ADMIN, region=Region.AU))
        url = f"/ui/au/reports/all/alerts?month={MONTH}"
        english = page.get(url, headers={"Accept-Language": "en"})
        assert english.status_code == 503
        assert "these regions did not answer (US, ES)" in english.text
        spanish = page.get(url, headers={"Accept-Language": "es"})
        assert "estas regiones no respondieron (US, ES)" in spanish.text
        api = TestClient(app, base_url="https://testserver")
        answer = api.get(
            f"/api/v1/au/reports/all/alerts?month={MONTH}", headers=world.headers(Role.ADMIN)
        )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "30"
    detail = answer.json()["detail"]
    assert detail["missing_regions"] == ["us", "es"]
    assert detail["reasons"] == {"us": "no answer within 0.2 s", "es": "no answer within 0.2 s"}


def test_support_reads_its_own_report_alone(world: World) -> None:
    with page_client(world, Role.SUPPORT) as client:
        index = client.get(f"/ui/au/reports?month={MONTH}")
        assert index.status_code == 200
        assert 'data-report="support"' in index.text
        assert 'data-report="fleet"' not in index.text
        assert client.get(f"/ui/au/reports/fleet?month={MONTH}").status_code == 403
        page = client.get(
            f"/ui/au/reports/support?month={MONTH}", headers={"Accept-Language": "es"}
        )
        assert page.status_code == 200
        assert "Cumplimiento del SLA de soporte" in page.text
        assert _page_rows(page.text) == [*SUPPORT, SUPPORT_TOTAL]
    api = TestClient(world.app, base_url="https://testserver")
    answer = api.get(
        f"/api/v1/au/reports/support?month={MONTH}", headers=world.headers(Role.SUPPORT)
    )
    assert answer.status_code == 200
    assert [list(r.values()) for r in answer.json()["rows"]] == SUPPORT
    # es's own month holds its ticket, none of au's.
    es = api.get(f"/api/v1/es/reports/support?month={MONTH}", headers=world.headers(Role.ADMIN))
    assert [r["first_response_measured"] for r in es.json()["rows"]] == ["0", "1", "0", "0"]


def test_tickets_per_thousand_customers_over_rest(world: World) -> None:
    api = TestClient(world.app, base_url="https://testserver")
    support = world.headers(Role.SUPPORT)
    answer = api.get(
        "/api/v1/au/support/ticket-rates", params={"months": 2, "to": MONTH}, headers=support
    )
    assert answer.status_code == 200
    got = {(r["month"], r["kind"]): r for r in answer.json()}
    assert len(got) == 2 * 7
    for month in ("2026-08", "2026-09"):
        customers, kinds = RATES[month]
        for kind, (tickets, rate) in kinds.items():
            row = got[(month, kind)]
            assert (row["customers"], row["tickets"], row["per_thousand"]) == (
                customers, tickets, rate,
            ), (month, kind)  # fmt: skip
    for bad in ({"to": "2026-13"}, {"months": 0}, {"months": 25}):
        refused = api.get("/api/v1/au/support/ticket-rates", params=bad, headers=support)
        assert refused.status_code == 422, bad
    customer = api.get("/api/v1/au/support/ticket-rates", headers=world.headers(Role.CUSTOMER))
    assert customer.status_code == 403


_RATE_ROW = re.compile(r'<tr data-month="([0-9-]+)">(.*?)</tr>', re.S)
_RATE_CELL = re.compile(
    r'<td data-column="([a-z_]+)"[^>]*><span class="cell-label">[^<]*</span>([^<]*)</td>'
)


def test_the_queue_shows_tickets_per_thousand_customers(world: World) -> None:
    with page_client(world, Role.SUPPORT) as client:
        page = client.get(f"/ui/au/support/tickets?to={MONTH}")
        assert page.status_code == 200
        shown = {
            month: dict(_RATE_CELL.findall(cells)) for month, cells in _RATE_ROW.findall(page.text)
        }
        assert list(shown) == list(RATES)
        for month, (customers, kinds) in RATES.items():
            assert shown[month] == {
                "customers": str(customers),
                **{k: rate for k, (_, rate) in kinds.items()},
            }, month
        refused = client.get("/ui/au/support/tickets?to=September")
        assert refused.status_code == 422
        assert 'id="refusal"' in refused.text
    with page_client(world, Role.CUSTOMER) as client:
        assert 'id="ticket-rates"' not in client.get("/ui/au/support/tickets").text
