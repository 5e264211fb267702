"""Portal API against a real database: tokens, roles, registry and readings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from cloud.adapters.mqtt import InboundMessage
from cloud.adapters.postgres import create_pool
from cloud.bootstrap import create_api
from cloud.ingest import IngestPipeline
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.telemetry import TelemetryReader, TelemetryStore
from contracts.timeutil import to_wire
from contracts.topics import Region
from tests.api_tokens import api_settings, bearer
from tests.integration.registry_events import deliver_gateway_events, deliver_ingest_events

pytestmark = pytest.mark.integration

GW = "gw-portal-1"
AU = "/api/v1/au"
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


@pytest.fixture
def services(database_url: str) -> Iterator[tuple[RegistryService, TelemetryReader, int]]:
    """Registry with one site and gateway, and 10 minutes of pv_w for one device."""
    migrate(database_url)
    pool = create_pool(database_url, name="test-portal")
    registry = RegistryService(pool)
    site = registry.add_site(SiteIn(name="Manly", region=Region.AU, time_zone="Australia/Sydney"))
    registry.add_gateway(GatewayIn(id=GW, site_id=site.id))
    deliver_gateway_events(pool)  # ingest learns the gateway
    pipeline = IngestPipeline(pool, TelemetryStore(pool))
    payload = orjson.dumps(
        {
            "v": 1,
            "stream_id": str(uuid.uuid4()),
            "seq": 1,
            "readings": [
                {
                    "device": "SN-1",
                    "ts": to_wire(T0 + timedelta(minutes=i)),
                    "values": {"pv_w": 100.0 * i},
                }
                for i in range(10)
            ],
        }
    )
    outcome = pipeline.process(
        [InboundMessage(f"potr/v1/au/{GW}/telemetry", payload, 1, 1, datetime.now(UTC))]
    )
    assert outcome.readings_added == 10
    deliver_ingest_events(pool, registry)  # the registry learns the device from ingest
    device_id = registry.device_id_for(GW, "SN-1")
    assert device_id is not None
    yield registry, TelemetryReader(pool), device_id
    pool.close()


@pytest.fixture
def client(
    database_url: str, services: tuple[RegistryService, TelemetryReader, int]
) -> Iterator[TestClient]:
    """The API as ``potr api`` builds it, after ``services`` filled the database."""
    settings = api_settings(database_url)
    pool = create_pool(database_url, name="test-portal-api")
    yield TestClient(create_api(settings, pool))
    pool.close()


def _auth(role: str, ttl_s: int = 300, now: datetime | None = None) -> dict[str, str]:
    return bearer(role, ttl_s=ttl_s, now=now)


def test_healthz_checks_the_database(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "checks": {"database": "ok"}}


@pytest.mark.parametrize(
    "path",
    [
        f"{AU}/sites",
        f"{AU}/gateways",
        f"{AU}/devices",
        f"{AU}/devices/1/readings?metric=pv_w",
        "/api/v1/xx/sites",
    ],
)
def test_api_routes_refuse_requests_without_a_token(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_an_expired_token_is_401(client: TestClient) -> None:
    old = datetime.now(UTC) - timedelta(hours=2)
    answer = client.get(f"{AU}/sites", headers=_auth("admin", 60, now=old))
    assert answer.status_code == 401
    assert answer.json()["detail"] == "token expired"


def test_a_garbage_token_is_401(client: TestClient) -> None:
    answer = client.get(f"{AU}/sites", headers={"Authorization": "Bearer not.a.jwt"})
    assert answer.status_code == 401


def test_a_customer_sees_only_its_accounts_sites(client: TestClient) -> None:
    """The site has no account: a customer's list is empty, and the site is not there."""
    headers = bearer("customer", account_id="acc_" + "0" * 32)
    assert client.get(f"{AU}/sites", headers=headers).json() == []
    assert client.get(f"{AU}/gateways/{GW}", headers=headers).status_code == 404


@pytest.mark.parametrize("role", ["admin", "operator", "support", "mosie"])
def test_staff_roles_list_sites_gateways_devices(client: TestClient, role: str) -> None:
    headers = _auth(role)
    assert [s["name"] for s in client.get(f"{AU}/sites", headers=headers).json()] == ["Manly"]
    assert [g["id"] for g in client.get(f"{AU}/gateways", headers=headers).json()] == [GW]
    devices = client.get(f"{AU}/devices", headers=headers).json()
    assert [d["local_id"] for d in devices] == ["SN-1"]


def test_admin_creates_a_site_and_gateway_support_may_not(client: TestClient) -> None:
    site = {"name": "Sevilla", "region": "es", "time_zone": "Europe/Madrid"}
    es = "/api/v1/es"
    assert client.post(f"{es}/sites", json=site, headers=_auth("support")).status_code == 403
    created = client.post(f"{es}/sites", json=site, headers=_auth("admin"))
    assert created.status_code == 201
    gw = {"id": "gw-sevilla-1", "site_id": created.json()["id"]}
    operator = bearer("operator", region="es")
    answer = client.post(f"{es}/gateways", json=gw, headers=operator)
    assert answer.status_code == 201
    assert answer.json()["region"] == "es"
    again = client.post(f"{es}/gateways", json=gw, headers=operator)
    assert again.status_code == 409
    # An au operator does not reach es, by URL or by the site's id under its own region.
    assert client.post(f"{es}/gateways", json=gw, headers=_auth("operator")).status_code == 404
    gw2 = {"id": "gw-sevilla-2", "site_id": created.json()["id"]}
    assert client.post(f"{AU}/gateways", json=gw2, headers=_auth("operator")).status_code == 404


def test_a_site_is_created_only_in_the_urls_region(client: TestClient) -> None:
    site = {"name": "Perth", "region": "au", "time_zone": "Australia/Perth"}
    answer = client.post("/api/v1/es/sites", json=site, headers=_auth("admin"))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "region"]


def test_a_site_body_with_extra_fields_is_refused(client: TestClient) -> None:
    site = {"name": "X", "region": "au", "time_zone": "Australia/Perth", "id": 99}
    assert client.post(f"{AU}/sites", json=site, headers=_auth("admin")).status_code == 422


def test_readings_of_a_device_in_a_window(
    client: TestClient, services: tuple[RegistryService, TelemetryReader, int]
) -> None:
    device_id = services[2]
    params = {
        "metric": "pv_w",
        "from": to_wire(T0 + timedelta(minutes=2)),
        "to": to_wire(T0 + timedelta(minutes=5)),
    }
    answer = client.get(
        f"{AU}/devices/{device_id}/readings", params=params, headers=_auth("operator")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["metric"], body["unit"], body["truncated"]) == ("pv_w", "W", False)
    assert [p["value"] for p in body["points"]] == [200.0, 300.0, 400.0]
    assert datetime.fromisoformat(body["points"][0]["ts"]) == T0 + timedelta(minutes=2)
    assert body["from"].startswith((T0 + timedelta(minutes=2)).isoformat()[:16])


def test_readings_are_limited(
    client: TestClient, services: tuple[RegistryService, TelemetryReader, int]
) -> None:
    answer = client.get(
        f"{AU}/devices/{services[2]}/readings",
        params={"metric": "pv_w", "limit": 4},
        headers=_auth("admin"),
    )
    body = answer.json()
    assert len(body["points"]) == 4
    assert body["truncated"] is True


def test_an_unknown_metric_is_422_naming_it(
    client: TestClient, services: tuple[RegistryService, TelemetryReader, int]
) -> None:
    answer = client.get(
        f"{AU}/devices/{services[2]}/readings",
        params={"metric": "bogus_w"},
        headers=_auth("admin"),
    )
    assert answer.status_code == 422
    assert "unknown metric 'bogus_w'" in answer.json()["detail"]


def test_an_unknown_device_is_404(client: TestClient) -> None:
    answer = client.get(
        f"{AU}/devices/999999/readings", params={"metric": "pv_w"}, headers=_auth("admin")
    )
    assert answer.status_code == 404


def test_a_naive_timestamp_is_422(
    client: TestClient, services: tuple[RegistryService, TelemetryReader, int]
) -> None:
    answer = client.get(
        f"{AU}/devices/{services[2]}/readings",
        params={"metric": "pv_w", "from": "2025-01-01T00:00:00"},
        headers=_auth("admin"),
    )
    assert answer.status_code == 422
    assert "UTC offset" in answer.json()["detail"][0]["msg"]


def test_openapi_declares_bearer_security_and_response_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    readings = spec["paths"]["/api/v1/{region}/devices/{device_id}/readings"]["get"]
    assert readings["security"] == [{"HTTPBearer": []}]
    # Raw samples or rollup buckets, told apart by `resolution`.
    schema = readings["responses"]["200"]["content"]["application/json"]["schema"]
    assert [s["$ref"].rsplit("/", 1)[1] for s in schema["oneOf"]] == [
        "ReadingSeries",
        "RollupSeries",
    ]
    assert schema["discriminator"]["propertyName"] == "resolution"


def test_a_device_is_readable_as_soon_as_its_first_batch_commits(
    client: TestClient, services: tuple[RegistryService, TelemetryReader, int], database_url: str
) -> None:
    """The readings route asks the telemetry store whether a device exists, not the
    registry, which hears of a new device only a relay round later."""
    pool = create_pool(database_url, name="test-portal-new-device")
    try:
        payload = orjson.dumps(
            {
                "v": 1,
                "stream_id": str(uuid.uuid4()),
                "seq": 1,
                "readings": [{"device": "SN-NEW", "ts": to_wire(T0), "values": {"pv_w": 42.0}}],
            }
        )
        outcome = IngestPipeline(pool, TelemetryStore(pool)).process(
            [InboundMessage(f"potr/v1/au/{GW}/telemetry", payload, 1, 1, datetime.now(UTC))]
        )
        assert outcome.readings_added == 1
        with pool.connection() as conn:
            [(device_id,)] = conn.execute(
                "SELECT device_id FROM ingest.device_keys WHERE local_id = 'SN-NEW'"
            ).fetchall()
    finally:
        pool.close()
    assert services[0].device_id_for(GW, "SN-NEW") is None  # ingest's events not relayed yet
    answer = client.get(
        f"{AU}/devices/{device_id}/readings",
        params={"metric": "pv_w", "from": to_wire(T0), "to": to_wire(T0 + timedelta(minutes=1))},
        headers=_auth("operator"),
    )
    assert answer.status_code == 200, answer.text
    assert [p["value"] for p in answer.json()["points"]] == [42.0]


@pytest.mark.parametrize("device_id", [0, 2**31, 2**63, -1])
def test_a_device_id_outside_the_key_range_is_422_not_an_error(
    client: TestClient, device_id: int
) -> None:
    answer = client.get(
        f"{AU}/devices/{device_id}/readings", params={"metric": "pv_w"}, headers=_auth("admin")
    )
    assert answer.status_code == 422
