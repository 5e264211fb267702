"""The customers routes without a database: every route documents what it can answer,
and what is out of bounds is answered 422 before the service is reached (its pool is
None here: a request that got through would fail with 500)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, cast

import pytest
from fastapi import FastAPI, Path
from fastapi.testclient import TestClient

from cloud.customers import CustomersService, create_router
from cloud.portal.errors import add_error_handlers
from cloud.scope import Access, Scope
from contracts.topics import Region

ACCOUNT = "acc_" + "0" * 32
#: What each route can answer, beyond 401, 403 and 422 (every route's).
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("get", "/accounts"): {"200"},
    ("post", "/accounts"): {"201", "409"},
    ("get", "/accounts/{account_id}"): {"200", "404"},
    ("patch", "/accounts/{account_id}"): {"200", "404", "409"},
    ("get", "/accounts/{account_id}/contacts"): {"200", "404"},
    ("post", "/accounts/{account_id}/contacts"): {"201", "404", "409"},
    ("delete", "/accounts/{account_id}/contacts/{contact_id}"): {"204", "404"},
    ("get", "/sites/{site_id}/installation"): {"200", "404"},
    ("put", "/sites/{site_id}/installation"): {"200", "201", "404", "409"},
    ("get", "/sites/{site_id}/meter-replacements"): {"200", "404"},
    ("post", "/sites/{site_id}/meter-replacements"): {"201", "404", "409"},
    ("get", "/sites/{site_id}/warranties"): {"200", "404"},
    ("put", "/sites/{site_id}/warranties/{serial}"): {"200", "404"},
}
PREFIX = "/api/v1/{region}"


def _allow(route: str) -> Callable[..., Any]:
    """A stand-in of the portal's ``access(route)``: an operator of the URL's region."""

    def access(region: Annotated[Region, Path()]) -> Access:
        return Access("tester", "operator", Scope.of_region(region))

    return access


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    add_error_handlers(app)
    service = CustomersService(cast(Any, None))
    app.include_router(create_router(service, access=_allow), prefix=PREFIX)
    return TestClient(app, raise_server_exceptions=False)


def test_every_route_documents_every_status_it_can_answer(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    found = {
        (method, path.removeprefix(PREFIX)): set(operation["responses"])
        for path, operations in paths.items()
        for method, operation in operations.items()
    }
    assert set(found) == set(EXPECTED)
    for route, statuses in found.items():
        assert statuses == EXPECTED[route] | {"401", "403", "422"}, route


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/fr/accounts"),  # no such region
        ("get", f"/api/v1/au/accounts/{ACCOUNT[:-1]}"),
        ("get", f"/api/v1/au/accounts/{ACCOUNT[:-1]}%00"),  # NUL
        ("get", f"/api/v1/au/accounts/{ACCOUNT.upper()}"),
        ("get", "/api/v1/au/sites/0/installation"),
        ("get", "/api/v1/au/sites/2147483648/installation"),
        ("get", "/api/v1/au/sites/1/meter-replacements?limit=1001"),
        ("get", "/api/v1/au/sites/1/warranties?offset=1000001"),
        ("get", "/api/v1/au/accounts?limit=0"),
        ("delete", f"/api/v1/au/accounts/{ACCOUNT}/contacts/9223372036854775808"),
        ("put", "/api/v1/au/sites/1/warranties/bad%20serial"),
    ],
)
def test_paths_and_queries_out_of_bounds_are_422(
    client: TestClient, method: str, path: str
) -> None:
    body = {"kind": "inverter", "warranty_until": "2030-01-01"} if method == "put" else None
    assert client.request(method, path, json=body).status_code == 422


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_a_body_are_422(client: TestClient, token: str) -> None:
    body = (
        '{"pv_kwp": ' + token + ', "tilt_deg": 20, "azimuth_deg": 0, "battery_kwh": 0,'
        ' "network_operator": "Ausgrid", "tariff_zone": "NSW", "installed_on": "2025-01-01",'
        ' "warranty_until": "2035-01-01", "billing_meter": "M1"}'
    )
    answer = client.put(
        "/api/v1/au/sites/1/installation",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422
    assert [e["loc"] for e in answer.json()["detail"]] == [["body", "pv_kwp"]]


def test_nul_in_a_body_is_422(client: TestClient) -> None:
    answer = client.post("/api/v1/au/accounts", json={"name": "Jo\u0000", "email": "jo@x.com"})
    assert answer.status_code == 422
    assert [e["loc"] for e in answer.json()["detail"]] == [["body", "name"]]
