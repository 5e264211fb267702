"""The cloud's MQTT settings (issue 12): TLS in production, secrets kept out of reprs,
errors and terminals, the credentials file, one broker identity per ingest worker."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from cloud.adapters.mqtt import MqttOptions, tls_context
from cloud.config import ConfigSettings
from cloud.credentials import read_credentials, write_credentials
from cloud.ingest import IngestSettings
from cloud.mqtt_options import mqtt_options
from cloud.portal import ApiSettings
from cloud.settings import CredentialsError, MqttSettings, redact_url
from potr.cli import app
from potr.ingest_workers import check_identities, worker_settings

SECRET = "s3cret-Pw"
#: The production shape: TLS, the broker's CA, the password outside the URL.
PROD: dict[str, Any] = {
    "env": "production",
    "mqtt_url": "mqtts://broker.example",
    "mqtt_ca_file": Path("/etc/potr/ca.pem"),
    "mqtt_username": "_ingest/au",
    "mqtt_password": SECRET,
}
SERVICE_SETTINGS = [IngestSettings, ConfigSettings]


# -- production refusals --------------------------------------------------------------
@pytest.mark.parametrize("settings", SERVICE_SETTINGS)
def test_production_accepts_tls_with_a_ca_and_a_separate_password(
    settings: type[MqttSettings],
) -> None:
    s = settings(**PROD)
    assert (s.mqtt.tls, s.mqtt.port) == (True, 8883)
    user, password = s.mqtt_credentials()
    assert user == "_ingest/au"
    assert password == SecretStr(SECRET)


@pytest.mark.parametrize("settings", SERVICE_SETTINGS)
def test_production_refuses_plaintext_mqtt(settings: type[MqttSettings]) -> None:
    with pytest.raises(ValidationError, match="plaintext mqtt://, refused"):
        settings(**{**PROD, "mqtt_url": "mqtt://broker.example", "mqtt_ca_file": None})


@pytest.mark.parametrize("settings", SERVICE_SETTINGS)
def test_production_refuses_tls_without_the_brokers_ca(settings: type[MqttSettings]) -> None:
    with pytest.raises(ValidationError, match="POTR_MQTT_CA_FILE is not set"):
        settings(**{**PROD, "mqtt_ca_file": None})


@pytest.mark.parametrize("settings", SERVICE_SETTINGS)
def test_production_refuses_a_password_in_the_url(settings: type[MqttSettings]) -> None:
    url = f"mqtts://_ingest%2Fau:{SECRET}@broker.example"
    with pytest.raises(ValidationError, match="put it in POTR_MQTT_PASSWORD") as err:
        settings(**{**PROD, "mqtt_url": url, "mqtt_password": None})
    assert SECRET not in str(err.value)


def test_production_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POTR_ENV", "production")
    monkeypatch.setenv("POTR_MQTT_URL", "mqtt://broker.example:1883")
    with pytest.raises(ValidationError, match="plaintext"):
        IngestSettings()


def test_dev_keeps_plaintext_and_a_password_in_the_url() -> None:
    s = IngestSettings(mqtt_url=f"mqtt://ingest:{SECRET}@127.0.0.1")
    assert (s.mqtt.tls, s.mqtt.port) == (False, 1883)
    user, password = s.mqtt_credentials()
    assert user == "ingest"
    assert password == SecretStr(SECRET)


def test_a_password_needs_a_username() -> None:
    with pytest.raises(ValidationError, match="no POTR_MQTT_USERNAME"):
        MqttSettings(mqtt_password=SECRET)


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValidationError, match="go together"):
        MqttSettings(mqtt_url="mqtts://b.example", mqtt_cert_file=Path("c.pem"))


def test_tls_files_with_a_plaintext_url_are_refused() -> None:
    with pytest.raises(ValidationError, match="use mqtts://"):
        MqttSettings(mqtt_url="mqtt://b.example", mqtt_ca_file=Path("ca.pem"))


def test_a_bad_url_is_refused_without_echoing_its_password() -> None:
    with pytest.raises(ValidationError, match="scheme must be mqtt:// or mqtts://") as err:
        MqttSettings(mqtt_url=f"http://u:{SECRET}@b.example")
    assert SECRET not in str(err.value)


# -- secrets out of reprs and terminals ----------------------------------------------
def test_repr_of_settings_shows_no_secret() -> None:
    s = IngestSettings(
        database_url=f"postgresql://potr:{SECRET}1@db.example/potr",
        mqtt_url=f"mqtt://ingest:{SECRET}2@broker.example",
        mqtt_password=f"{SECRET}3",
    )
    api = ApiSettings(database_url=f"postgresql://potr:{SECRET}4@db.example/potr")
    shown = repr(s) + str(s) + repr(s.mqtt) + repr(api) + str(api)
    assert SECRET not in shown
    assert "postgresql://potr@db.example/potr" in shown
    assert "mqtt://ingest@broker.example" in shown
    assert s.database_url_redacted == "postgresql://potr@db.example/potr"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mqtts://u:pw@b.example:8883", "mqtts://u@b.example:8883"),
        ("mqtt://b.example:1883", "mqtt://b.example:1883"),
        ("postgresql://potr:pw@db:5432/potr?sslmode=require", "postgresql://potr@db:5432/potr?sslmode=require"),
        ("postgresql://potr@db/potr?password=pw&sslmode=require", "postgresql://potr@db/potr?sslmode=require"),
        ("amqp://guest:pw@[::1]:5672/", "amqp://guest@[::1]:5672/"),
        ("host=db user=potr password=pw dbname=potr", "host=db user=potr password=*** dbname=potr"),
    ],
)  # fmt: skip
def test_redact_url_drops_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_adapter_options_hide_the_password_and_carry_tls() -> None:
    s = MqttSettings(
        mqtt_url="mqtts://broker.example:8884",
        mqtt_username="_config/au",
        mqtt_password=SECRET,
        mqtt_ca_file=Path("/ca.pem"),
    )
    options = mqtt_options(s, "potr-config-1", session_expiry_s=0)
    assert (options.tls, options.ca_file, options.port) == (True, "/ca.pem", 8884)
    assert options.session_expiry_s == 0
    assert options.where == "mqtts://_config/au@broker.example:8884"
    assert SECRET not in repr(options)


def test_the_tls_context_requires_a_verified_broker_with_its_name() -> None:
    context = tls_context(MqttOptions("b.example", 8883, client_id="c", tls=True))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_refused_setting_is_printed_without_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POTR_ENV", "production")
    monkeypatch.setenv("POTR_MQTT_URL", f"mqtt://_ingest%2Fau:{SECRET}@broker.example")
    out = CliRunner().invoke(app, ["ingest"])
    assert out.exit_code == 2
    assert "plaintext mqtt://" in out.output
    assert SECRET not in out.output


# -- the credentials file -------------------------------------------------------------
def test_credentials_are_written_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "mqtt-credentials.yaml"
    # Values YAML would read as other types unless the writer quotes them.
    passwords = {"_ingest/au-0": "123", "_ingest/au-1": "true", "_config/au": "- a: b"}
    write_credentials(path, passwords)
    assert os.stat(path).st_mode & 0o777 == 0o600
    read = read_credentials(path)
    assert {u: p.get_secret_value() for u, p in read.items()} == passwords


def test_a_credentials_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_credentials(path, {"u": SECRET})
    path.chmod(0o640)
    with pytest.raises(CredentialsError, match="mode 0640") as err:
        read_credentials(path)
    assert SECRET not in str(err.value)


def test_a_malformed_credentials_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, f"u: [{SECRET}\n".encode())
    os.close(fd)
    with pytest.raises(CredentialsError, match="not valid YAML") as err:
        read_credentials(path)
    assert SECRET not in str(err.value)


def test_the_credentials_file_entry_is_the_identitys_password(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_credentials(path, {"_config/au": "from-file"})
    s = MqttSettings(
        mqtt_username="_config/au", mqtt_password="from-env", mqtt_credentials_file=path
    )
    assert s.mqtt_credentials() == ("_config/au", SecretStr("from-file"))
    missing = s.model_copy(update={"mqtt_username": "_config/us", "mqtt_password": None})
    with pytest.raises(CredentialsError, match="no password for _config/us"):
        missing.mqtt_credentials()


# -- one identity per ingest worker ------------------------------------------------------
def test_each_ingest_worker_has_its_own_identity(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_credentials(path, {"_ingest/au-0": "pw-0", "_ingest/au-1": "pw-1"})
    s = IngestSettings(
        mqtt_username="_ingest/au",
        mqtt_credentials_file=path,
        mqtt_client_id="ingest-au",
        ingest_workers=2,
    )
    assert check_identities(s) == ["_ingest/au-0", "_ingest/au-1"]
    worker = worker_settings(s, 1)
    assert (worker.mqtt_client_id, worker.mqtt_username) == ("ingest-au-1", "_ingest/au-1")
    assert worker.mqtt_credentials() == ("_ingest/au-1", SecretStr("pw-1"))
    assert worker_settings(s.model_copy(update={"ingest_workers": 1}), 0).mqtt_username == (
        "_ingest/au-0"
    )


def test_a_worker_without_a_password_is_refused_before_any_starts(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_credentials(path, {"_ingest/au-0": SECRET})
    s = IngestSettings(mqtt_username="_ingest/au", mqtt_credentials_file=path, ingest_workers=2)
    with pytest.raises(CredentialsError, match="no password for _ingest/au-1") as err:
        check_identities(s)
    assert SECRET not in str(err.value)


def test_the_urls_password_is_not_handed_to_worker_identities() -> None:
    s = IngestSettings(mqtt_url=f"mqtt://_ingest%2Fau:{SECRET}@127.0.0.1", ingest_workers=2)
    with pytest.raises(CredentialsError, match="no password for ingest worker identity"):
        check_identities(s)


def test_anonymous_workers_need_no_identity() -> None:
    assert check_identities(IngestSettings(ingest_workers=3)) == []
    assert worker_settings(IngestSettings(ingest_workers=3), 2).mqtt_username is None
