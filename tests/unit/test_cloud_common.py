"""Cloud settings (per service), migration discovery, stored coalescing, device kinds."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.config import ConfigSettings
from cloud.ingest import IngestSettings
from cloud.ingest.coalesce import StoredCoalescer, StoredNotice
from cloud.ingest.worker import subscriptions
from cloud.migrate import discover
from cloud.portal import ApiSettings
from cloud.settings import DatabaseSettings
from device_profiles.kinds import device_kind

S1, S2 = uuid.uuid4(), uuid.uuid4()


def test_the_api_verifies_tokens_with_the_identity_public_key_only() -> None:
    # No shared secret any more: the API holds a public key, which mints nothing.
    assert "jwt_secret" not in ApiSettings().model_dump()
    assert ApiSettings(identity_public_key_file="/k.pub").identity_public_key_file


def test_statement_timeout_defaults_to_30_s() -> None:
    assert DatabaseSettings().db_statement_timeout_ms == 30_000


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
    monkeypatch.setenv("POTR_IDENTITY_PUBLIC_KEY_FILE", "/etc/potr/identity.pub")
    ingest, config, api = IngestSettings(), ConfigSettings(), ApiSettings()
    assert ingest.database_url == config.database_url == api.database_url
    assert ingest.mqtt.host == config.mqtt.host == "broker.example"
    assert config.env == api.env == "production"


def test_a_service_reads_only_its_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A missing token key is the API's problem: ingest, which never reads it, still starts.
    monkeypatch.setenv("POTR_ENV", "production")
    monkeypatch.setenv("POTR_MQTT_URL", "mqtts://broker.example")
    monkeypatch.setenv("POTR_MQTT_CA_FILE", "/etc/potr/mqtt-ca.pem")
    assert "identity_public_key_file" not in IngestSettings().model_dump()
    with pytest.raises(ValidationError, match="POTR_IDENTITY_PUBLIC_KEY_FILE"):
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
        ([1, 802, 124, 701], "battery"),  # sim-battery: its counters are in 701
        ([1, 701, 702, 704, 713], "inverter"),  # a hybrid inverter
        ([1, 103, 124], "inverter"),  # an inverter with storage controls
        ([1], "unknown"),
    ],
)
def test_device_kind_follows_sunspec_models(models: list[int], kind: str) -> None:
    assert device_kind(models) == kind
