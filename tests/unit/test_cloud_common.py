"""Cloud settings (per service), migration discovery, stored coalescing, device kinds."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.config import ConfigSettings
from cloud.identity import DEV_JWT_SECRET, MAX_JWT_TTL_S, TokenSettings
from cloud.ingest import IngestSettings
from cloud.ingest.coalesce import StoredCoalescer, StoredNotice
from cloud.ingest.worker import subscriptions
from cloud.migrate import discover
from cloud.portal import ApiSettings
from cloud.registry.logic import device_kind
from cloud.settings import DatabaseSettings

S1, S2 = uuid.uuid4(), uuid.uuid4()


@pytest.mark.parametrize("settings", [TokenSettings, ApiSettings])
def test_production_refuses_the_dev_jwt_secret(settings: type[TokenSettings]) -> None:
    with pytest.raises(ValidationError, match="dev secret"):
        settings(env="production", jwt_secret=DEV_JWT_SECRET)


@pytest.mark.parametrize("settings", [TokenSettings, ApiSettings])
def test_production_refuses_a_short_jwt_secret(settings: type[TokenSettings]) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        settings(env="production", jwt_secret="x" * 31)


@pytest.mark.parametrize(
    ("env", "api_host"),
    [("dev", "0.0.0.0"), ("test", "10.1.2.3"), ("dev", "api.example.com"), ("test", "::")],
)
def test_the_dev_secret_is_refused_off_loopback(env: str, api_host: str) -> None:
    with pytest.raises(ValidationError, match="dev secret"):
        ApiSettings(env=env, api_host=api_host)  # the default secret is the dev one


@pytest.mark.parametrize("api_host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_the_dev_secret_is_accepted_on_loopback_in_dev_and_test(api_host: str) -> None:
    assert ApiSettings(env="dev", api_host=api_host).env == "dev"
    assert ApiSettings(env="test", api_host=api_host).env == "test"


def test_a_real_secret_may_serve_any_address() -> None:
    assert ApiSettings(env="dev", api_host="0.0.0.0", jwt_secret="y" * 40).api_host


def test_token_lifetime_is_capped() -> None:
    assert TokenSettings(jwt_ttl_s=MAX_JWT_TTL_S).jwt_ttl_s == MAX_JWT_TTL_S
    with pytest.raises(ValidationError, match="jwt_ttl_s"):
        TokenSettings(jwt_ttl_s=MAX_JWT_TTL_S + 1)


def test_statement_timeout_defaults_to_30_s() -> None:
    assert DatabaseSettings().db_statement_timeout_ms == 30_000


def test_production_accepts_a_real_secret() -> None:
    settings = ApiSettings(env="production", jwt_secret="x" * 40)
    assert settings.jwt_secret.get_secret_value() == "x" * 40


def test_settings_come_from_potr_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POTR_MQTT_URL", "mqtt://ingest:p%40ss@broker.example:8883")
    monkeypatch.setenv("POTR_MQTT_SHARED_SUBSCRIPTION", "false")
    settings = IngestSettings()
    assert (settings.mqtt.host, settings.mqtt.port) == ("broker.example", 8883)
    user, password = settings.mqtt_credentials()
    assert (user, password and password.get_secret_value()) == ("ingest", "p@ss")
    assert not settings.mqtt_shared_subscription


def test_every_service_reads_the_same_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POTR_DATABASE_URL", "postgresql://potr@db.example/potr")
    monkeypatch.setenv("POTR_MQTT_URL", "mqtts://broker.example:1884")
    monkeypatch.setenv("POTR_MQTT_CA_FILE", "/etc/potr/mqtt-ca.pem")
    monkeypatch.setenv("POTR_ENV", "production")
    monkeypatch.setenv("POTR_JWT_SECRET", "z" * 40)
    ingest, config, api = IngestSettings(), ConfigSettings(), ApiSettings()
    assert ingest.database_url == config.database_url == api.database_url
    assert ingest.mqtt.host == config.mqtt.host == "broker.example"
    assert config.env == api.env == "production"


def test_a_service_reads_only_its_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A weak JWT secret is the API's problem: ingest, which never reads it, still starts.
    monkeypatch.setenv("POTR_ENV", "production")
    monkeypatch.setenv("POTR_MQTT_URL", "mqtts://broker.example")
    monkeypatch.setenv("POTR_MQTT_CA_FILE", "/etc/potr/mqtt-ca.pem")
    monkeypatch.setenv("POTR_JWT_SECRET", "short")
    assert "jwt_secret" not in IngestSettings().model_dump()
    with pytest.raises(ValidationError, match="at least 32 characters"):
        ApiSettings()


@pytest.mark.parametrize("settings", [IngestSettings, ConfigSettings])
def test_a_bad_mqtt_url_is_refused(settings: type[IngestSettings]) -> None:
    with pytest.raises(ValidationError, match="scheme must be mqtt"):
        settings(mqtt_url="http://broker.example")


def test_shared_subscriptions_cover_every_gateway_kind() -> None:
    subs = subscriptions(IngestSettings())
    assert "$share/ingest/potr/v1/+/+/telemetry" in subs
    assert len(subs) == 6
    plain = subscriptions(IngestSettings(mqtt_shared_subscription=False, ingest_region="es"))
    assert "potr/v1/es/+/birth" in plain


def test_migrations_are_discovered_per_schema_in_order() -> None:
    names = [m.name for m in discover()]
    assert "registry/001_registry.sql" in names
    assert "ingest/001_ingest.sql" in names
    assert names == sorted(names)


def test_a_misnamed_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "svc" / "schema").mkdir(parents=True)
    (tmp_path / "svc" / "schema" / "1_init.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match="NNN_lower_snake"):
        discover(tmp_path)


def test_stored_is_sent_at_once_then_held_back_per_gateway() -> None:
    c = StoredCoalescer(interval_s=1.0)
    c.add([StoredNotice("au", "gw-a", S1, 5)])
    assert c.due(now=100.0) == [StoredNotice("au", "gw-a", S1, 5)]
    c.add(
        [
            StoredNotice("au", "gw-a", S1, 6),
            StoredNotice("au", "gw-a", S1, 9),
            StoredNotice("au", "gw-b", S2, 1),
        ]
    )
    assert c.due(now=100.5) == [StoredNotice("au", "gw-b", S2, 1)]
    assert c.due(now=101.0) == [StoredNotice("au", "gw-a", S1, 9)]
    assert c.due(now=105.0) == []


def test_held_back_stored_is_drained_on_shutdown() -> None:
    c = StoredCoalescer(interval_s=60.0)
    c.add([StoredNotice("au", "gw-a", S1, 1)])
    c.due(now=0.0)
    c.add([StoredNotice("au", "gw-a", S1, 2)])
    assert c.due(now=1.0) == []
    assert c.drain() == [StoredNotice("au", "gw-a", S1, 2)]


@pytest.mark.parametrize(
    ("models", "kind"),
    [
        ([1, 103, 120], "inverter"),
        ([1, 203], "meter"),
        ([1, 802], "battery"),
        ([1], "unknown"),
    ],
)
def test_device_kind_follows_sunspec_models(models: list[int], kind: str) -> None:
    assert device_kind(models) == kind
