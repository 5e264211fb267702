"""The reports' exact machine form (``format=parts``, :mod:`cloud.reports.wire`): a
region's table travels with every digit of its parts, so the combined table adds the
very values each region added — not the rounded cells of the JSON — and a region whose
table cannot be had makes the cross-region answer 503 naming it, never a partial total.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from cloud.bootstrap import open_remote_reports
from cloud.portal import ApiSettings
from cloud.reports import (
    Column,
    RemoteReports,
    ReportParts,
    ReportTable,
    as_out,
    as_parts,
    cell_text,
    combine,
    create_cross_region_router,
    table_of,
)
from cloud.scope import Access, Scope
from contracts.topics import Region
from potr.servers.ports import free_port

SEPT = date(2026, 9, 1)
COLUMNS = (
    Column("day", "key"),
    Column("sites", "count"),
    Column("energy_kwh", "decimal"),
    Column("expected_kwh", "decimal"),
    Column("performance_ratio", "percent", ("energy_kwh", "expected_kwh")),
)


def _table(region: str, energy: str, expected: str, sites: int) -> ReportTable:
    row: dict[str, Any] = {
        "day": "2026-09-01",
        "sites": sites,
        "energy_kwh": Decimal(energy),
        "expected_kwh": Decimal(expected),
        "performance_ratio": None,
    }
    return ReportTable(
        "fleet", SEPT, region, COLUMNS, ("day",), "energy_kwh", [row], ("note.fleet",)
    )


# Each region's energy is 0.005 kWh: written rounded half up, each shows "0.01"; their
# sum is 0.010 kWh exactly, which shows "0.01" too — the rounded cells would add to 0.02.
AU = _table("au", "0.005", "0.0125", 1)
US = _table("us", "0.005", "0.0125", 2)


def test_parts_carry_every_digit_and_come_back_the_same_table() -> None:
    wire = json.loads(as_parts(AU).model_dump_json())
    assert wire["rows"] == [
        {"day": "2026-09-01", "sites": "1", "energy_kwh": "0.005", "expected_kwh": "0.0125"}
    ]
    assert wire["ratios"] == {"performance_ratio": ["energy_kwh", "expected_kwh"]}
    back = table_of(ReportParts.model_validate(wire))
    assert back.columns == AU.columns
    assert back.rows[0]["energy_kwh"] == Decimal("0.005")
    # The ratio is worked out again from the parts: 0.005 / 0.0125 = 40.0 %.
    assert back.rows[0]["performance_ratio"] == Decimal("40.0")
    # What the JSON shows is rounded: 0.01 kWh.
    assert as_out(AU).rows[0]["energy_kwh"] == "0.01"


def test_combining_parts_adds_exact_values_not_the_rounded_cells() -> None:
    travelled = [table_of(ReportParts.model_validate_json(as_parts(t).model_dump_json()))
                 for t in (AU, US)]  # fmt: skip
    combined = combine(travelled)
    [row] = combined.rows
    # By hand: 0.005 + 0.005 = 0.010 kWh of 0.0125 + 0.0125 = 0.025 kWh: 40.0 %; 3 sites.
    assert row["energy_kwh"] == Decimal("0.010")
    assert row["sites"] == 3
    energy = combined.column("energy_kwh")
    assert cell_text(energy, row["energy_kwh"]) == "0.01"  # not "0.02" (0.01 + 0.01)
    assert cell_text(combined.column("performance_ratio"), row["performance_ratio"]) == "40.0"


@pytest.mark.parametrize(
    ("column", "text"),
    [("sites", "1.5"), ("sites", "NaN"), ("energy_kwh", "Infinity"), ("energy_kwh", "1,5")],
)
def test_a_cell_that_is_not_its_columns_kind_is_refused(column: str, text: str) -> None:
    wire = json.loads(as_parts(AU).model_dump_json())
    wire["rows"][0][column] = text
    with pytest.raises(ValueError, match=column):
        table_of(ReportParts.model_validate(wire))


def test_tables_with_different_columns_are_not_combined() -> None:
    other = ReportTable("fleet", SEPT, "us", COLUMNS[:4], ("day",), "energy_kwh", [])
    with pytest.raises(ValueError, match="different columns"):
        combine([AU, other])


# --- a region that does not answer ----------------------------------------------------


class _Local:
    """The process's own region: a table in memory (what its reader would make)."""

    names = ("fleet",)

    def report(self, name: str, month: date, *, scope: Scope) -> ReportTable:
        return AU


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung region)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def _client(remote: dict[Region, RemoteReports]) -> TestClient:
    def access(route: str) -> Any:
        def admin() -> Access:
            return Access("admin-1", "admin", Scope.everything())

        return admin

    app = FastAPI()
    router = create_cross_region_router(
        {Region.AU: _Local()},  # type: ignore[dict-item]
        access=access,
        words_for=lambda _: {},
        remote=remote,
    )
    app.include_router(router, prefix="/api/v1/{region}")
    return TestClient(app)


def test_regions_that_do_not_answer_make_a_503_naming_them(silent_port: int) -> None:
    remote = {
        Region.US: RemoteReports(Region.US, f"http://127.0.0.1:{silent_port}", timeout_s=0.3),
        Region.ES: RemoteReports(Region.ES, f"http://127.0.0.1:{free_port()}", timeout_s=0.3),
    }
    try:
        answer = _client(remote).get(
            "/api/v1/au/reports/all/fleet",
            params={"month": "2026-09"},
            headers={"Authorization": "Bearer secret-token-value"},
        )
    finally:
        for source in remote.values():
            source.close()
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail["missing_regions"] == ["us", "es"]
    assert detail["reasons"] == {
        "us": "no answer within 0.3 s",
        "es": "unreachable (ConnectError)",
    }
    assert "us, es" in detail["message"]
    assert "secret-token-value" not in answer.text


# --- the setting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "url", "refused"),
    [
        ("production", "https://api.potr.example", False),
        ("production", "http://127.0.0.1:8080", False),
        ("production", "http://api.potr.example", True),
        ("dev", "http://api.potr.example", False),
    ],
)
def test_production_refuses_a_plaintext_gateway_to_another_host(
    env: str, url: str, refused: bool
) -> None:
    given: dict[str, Any] = {
        "env": env, "identity_public_key_file": "/k.pub", "reports_gateway_url": url,
    }  # fmt: skip
    if refused:
        with pytest.raises(ValidationError, match="POTR_REPORTS_GATEWAY_URL"):
            ApiSettings(**given)
    else:
        assert ApiSettings(**given).reports_gateway_url == url


def test_a_gateway_url_that_is_no_http_url_is_refused() -> None:
    with pytest.raises(ValidationError, match="reports_gateway_url"):
        ApiSettings(reports_gateway_url="ftp://api.potr.example")


def test_a_pinned_process_asks_the_other_regions_through_the_gateway() -> None:
    settings = ApiSettings(api_region="us", reports_gateway_url="https://api.potr.example")
    with open_remote_reports(settings) as remote:
        assert sorted(remote) == [Region.AU, Region.ES]
        assert all(source.region == region for region, source in remote.items())
    with open_remote_reports(ApiSettings(reports_gateway_url="https://api.potr.example")) as none:
        assert none == {}  # every region here: its own readers
    with open_remote_reports(ApiSettings(api_region="us")) as off:
        assert off == {}  # no gateway named: the route is not offered
