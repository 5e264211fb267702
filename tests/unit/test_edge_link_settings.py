"""The agent's broker link settings: TLS, identity, secrets, production refusals, and the
reconnect and packet limits (issue 12)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from broker_config.mosquitto import MosquittoConfig, MosquittoListener
from edge_agent.settings import AgentSettings, SettingsError

BASE = "gateway_id: gw-au-0001\nregion: au\n"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """PEM-shaped files: settings check that they exist and who may read the key, not
    their content (the TLS handshake does that, in the integration test)."""
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("-----BEGIN X-----\n-----END X-----\n")
    files["key"].chmod(0o600)
    return files


def _load(tmp_path: Path, text: str) -> AgentSettings:
    path = tmp_path / "agent.yaml"
    path.write_text(BASE + text)
    return AgentSettings.from_yaml(path)


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(SettingsError) as refused:
        _load(tmp_path, text)
    return str(refused.value)


def test_mqtts_means_tls_on_port_8883_unless_given(tmp_path: Path) -> None:
    target = _load(tmp_path, "mqtt_url: mqtts://broker.example\n").mqtt_target()
    assert (target.host, target.port, target.tls) == ("broker.example", 8883, True)
    assert _load(tmp_path, "mqtt_url: mqtts://broker.example:18883\n").mqtt_target().port == 18883
    assert _load(tmp_path, "mqtt_url: mqtt://broker.example\n").mqtt_target()[1:3] == (1883, False)


def test_a_password_in_the_url_moves_to_the_secret_and_is_never_shown(tmp_path: Path) -> None:
    s = _load(tmp_path, "mqtt_url: mqtt://gw-au-0001:s3cr%40t@broker.example:1883\n")
    assert s.mqtt_url == "mqtt://gw-au-0001@broker.example:1883"
    assert s.mqtt_password is not None
    assert s.mqtt_password.get_secret_value() == "s3cr@t"
    assert s.mqtt_target().username == "gw-au-0001"
    for shown in (repr(s), str(s), s.model_dump_json(), repr(s.mqtt_target())):
        assert "s3cr" not in shown


def test_an_explicit_password_beats_the_urls(tmp_path: Path) -> None:
    s = _load(tmp_path, "mqtt_url: mqtt://u:from-url@h\nmqtt_password: explicit\n")
    assert s.mqtt_password is not None
    assert s.mqtt_password.get_secret_value() == "explicit"
    assert "from-url" not in s.mqtt_url


def test_the_password_from_the_environment_is_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POTR_MQTT_PASSWORD", "env-s3cret")
    s = _load(tmp_path, "")
    assert s.mqtt_password is not None
    assert s.mqtt_password.get_secret_value() == "env-s3cret"
    assert "env-s3cret" not in repr(s)


PRODUCTION_REFUSALS = [
    ("mqtt_url: mqtt://broker.example\n", "plaintext MQTT is refused in production"),
    ("mqtt_url: tcp://broker.example\n", "plaintext MQTT is refused in production"),
    ("mqtt_url: mqtts://broker.example\nmqtt_password: p\n", "mqtt_ca_file is required"),
    (
        "mqtt_url: mqtts://gw:s3cret@broker.example\nmqtt_ca_file: {ca}\n",
        "no password in the URL in production",
    ),
    ("mqtt_url: mqtts://broker.example\nmqtt_ca_file: {ca}\n", "production needs an identity"),
]


@pytest.mark.parametrize(("text", "reason"), PRODUCTION_REFUSALS)
def test_production_refuses_an_unsafe_link_with_the_reason(
    tmp_path: Path, pki: dict[str, Path], text: str, reason: str
) -> None:
    refused = _refused(tmp_path, "env: production\n" + text.format(**pki))
    assert reason in refused
    assert "s3cret" not in refused


@pytest.mark.parametrize(("text", "reason"), PRODUCTION_REFUSALS[:2])
def test_dev_and_test_allow_plaintext(tmp_path: Path, text: str, reason: str) -> None:
    for env in ("dev", "test"):
        assert not _load(tmp_path, f"env: {env}\n" + text).mqtt_target().tls


def test_production_takes_tls_with_a_ca_and_a_password_from_the_environment(
    tmp_path: Path, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POTR_ENV", "production")
    monkeypatch.setenv("POTR_MQTT_PASSWORD", "from-env")
    s = _load(tmp_path, f"mqtt_url: mqtts://gw-au-0001@broker.example\nmqtt_ca_file: {pki['ca']}\n")
    assert s.env == "production"
    assert s.mqtt_target().tls


def test_production_takes_a_client_certificate_instead_of_a_password(
    tmp_path: Path, pki: dict[str, Path]
) -> None:
    s = _load(
        tmp_path,
        "env: production\nmqtt_url: mqtts://broker.example\n"
        f"mqtt_ca_file: {pki['ca']}\nmqtt_cert_file: {pki['cert']}\nmqtt_key_file: {pki['key']}\n",
    )
    assert s.mqtt_key_file == pki["key"]
    assert s.mqtt_password is None


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_others_may_read_is_refused(tmp_path: Path, pki: dict[str, Path], mode: int) -> None:
    pki["key"].chmod(mode)
    refused = _refused(
        tmp_path,
        f"mqtt_url: mqtts://h\nmqtt_cert_file: {pki['cert']}\nmqtt_key_file: {pki['key']}\n",
    )
    assert "mqtt_key_file" in refused
    assert f"mode {mode:04o}" in refused
    assert "chmod 600" in refused


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("mqtt_url: mqtt://h\nmqtt_ca_file: {ca}\n", "mqtt_ca_file: TLS files need an mqtts:"),
        ("mqtt_url: mqtts://h\nmqtt_cert_file: {cert}\n", "go together"),
        ("mqtt_url: mqtts://h\nmqtt_ca_file: /no/such/ca.pem\n", "mqtt_ca_file"),
        ("mqtt_url: mqtts://h:port\n", "port that is not a number"),
        ("mqtt_url: https://h\n", "mqtt_url must look like"),
        ("reconnect_min_s: 10\nreconnect_max_s: 5\n", "reconnect_min_s must not exceed"),
        ("mqtt_max_packet_bytes: 100\n", "mqtt_max_packet_bytes"),
    ],
)
def test_contradictory_link_settings_are_refused(
    tmp_path: Path, pki: dict[str, Path], text: str, reason: str
) -> None:
    assert reason in _refused(tmp_path, text.format(**pki))


def test_defaults_match_the_broker_and_spread_a_fleet(tmp_path: Path) -> None:
    s = _load(tmp_path, "")
    broker = MosquittoConfig((MosquittoListener(1883),), development=True)
    assert s.mqtt_max_packet_bytes == broker.max_packet_size == 256 * 1024
    # The reconnect window that keeps 50 gateways under 20 % a second (decision 36).
    assert (s.reconnect_min_s, s.reconnect_max_s) == (30.0, 60.0)
    assert s.env == "dev"


def test_the_link_config_keeps_the_password_out_of_its_repr(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from edge_agent.mqtt import LinkConfig

    cfg: Any = LinkConfig(host="h", port=1, client_id="c", username="u", password="s3cret")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("link %s", cfg)
    assert "s3cret" not in repr(cfg)
    assert "s3cret" not in caplog.text
