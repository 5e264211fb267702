"""Agent settings: YAML then environment; bad files refused with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_profiles import BUILTIN_DIR
from edge_agent.settings import (
    AgentSettings,
    EndpointSettings,
    RtuEndpointSettings,
    SettingsError,
)

GOOD = """\
gateway_id: gw-au-0001
region: au
mqtt_url: mqtt://gw-au-0001:s3cret@broker.example:1883
buffer_path: /var/lib/potr/buffer.sqlite
poll_interval_s: 5
endpoints:
  - name: inverter
    host: 192.168.1.20
    port: 502
    unit_ids: [1, 2]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_a_good_file_loads(tmp_path: Path) -> None:
    s = AgentSettings.from_yaml(_write(tmp_path, GOOD))
    assert s.gateway_id == "gw-au-0001"
    assert s.endpoints[0].unit_ids == [1, 2]
    assert s.effective_publish_interval_s == 5
    target = s.mqtt_target()
    assert (target.host, target.port, target.tls, target.username) == (
        "broker.example",
        1883,
        False,
        "gw-au-0001",
    )
    assert target.password is not None
    assert target.password.get_secret_value() == "s3cret"
    assert s.mqtt_protocol == "5"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POTR_POLL_INTERVAL_S", "2")
    monkeypatch.setenv("POTR_MQTT_PROTOCOL", "3.1.1")
    s = AgentSettings.from_yaml(_write(tmp_path, GOOD))
    assert s.poll_interval_s == 2
    assert s.mqtt_protocol == "3.1.1"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ("unknown_key: 1\n", "unknown_key"),
        ("poll_interval_s: -1\n", "poll_interval_s"),
        ("region: mars\n", "region"),
        ("gateway_id: Bad_Id\n", "gateway_id"),
        ("mqtt_url: http://x\n", "mqtt_url"),
    ],
)
def test_bad_values_are_refused_naming_the_field(tmp_path: Path, bad: str, field: str) -> None:
    text = "\n".join(
        line for line in GOOD.splitlines() if not line.startswith(bad.split(":")[0] + ":")
    )
    with pytest.raises(SettingsError, match=field):
        AgentSettings.from_yaml(_write(tmp_path, text + "\n" + bad))


def test_a_bad_endpoint_names_its_path(tmp_path: Path) -> None:
    text = GOOD.replace("unit_ids: [1, 2]", "unit_ids: [1, 300]")
    with pytest.raises(SettingsError, match=r"endpoints\.0\.unit_ids"):
        AgentSettings.from_yaml(_write(tmp_path, text))


def test_not_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not valid YAML"):
        AgentSettings.from_yaml(_write(tmp_path, "gateway_id: [unclosed\n"))
    with pytest.raises(SettingsError, match="mapping"):
        AgentSettings.from_yaml(_write(tmp_path, "- a list\n"))


RTU = """\
  - name: rs485
    transport: rtu
    serial_port: /dev/ttyUSB0
    baudrate: 9600
    parity: E
    stopbits: 1
    unit_ids: [1, 5]
    unit_profiles: {5: sim-isolator}
"""


def test_endpoints_are_tcp_by_default_or_rtu(tmp_path: Path) -> None:
    s = AgentSettings.from_yaml(_write(tmp_path, GOOD + RTU))
    tcp, rtu = s.endpoints
    assert isinstance(tcp, EndpointSettings)
    assert tcp.transport == "tcp"
    assert isinstance(rtu, RtuEndpointSettings)
    assert (rtu.serial_port, rtu.baudrate, rtu.parity, rtu.stopbits) == (
        "/dev/ttyUSB0",
        9600,
        "E",
        1,
    )
    assert rtu.profile_for(5) == "sim-isolator"
    assert rtu.profile_for(1) is None  # SunSpec discovery


def test_an_endpoint_profile_applies_to_every_unit_unless_overridden(tmp_path: Path) -> None:
    text = GOOD.replace("unit_ids: [1, 2]", "unit_ids: [1, 2]\n    profile: sim-inverter-103")
    text = text.replace(
        "profile: sim-inverter-103",
        "profile: sim-inverter-103\n    unit_profiles: {2: sim-meter-203}",
    )
    s = AgentSettings.from_yaml(_write(tmp_path, text))
    assert [s.endpoints[0].profile_for(u) for u in (1, 2)] == ["sim-inverter-103", "sim-meter-203"]


@pytest.mark.parametrize(
    ("rtu", "field"),
    [
        (RTU.replace("    baudrate: 9600\n", ""), r"endpoints\.1\.baudrate: Field required"),
        (RTU.replace("baudrate: 9600", "baudrate: 9601"), r"endpoints\.1\.baudrate"),
        (RTU.replace("parity: E", "parity: X"), r"endpoints\.1\.parity"),
        (RTU.replace("transport: rtu", "transport: udp"), r"endpoints\.1: transport must be"),
        (RTU.replace("serial_port", "host"), r"endpoints\.1\.host"),
        (RTU.replace("{5: sim-isolator}", "{5: no-such}"), r"unit_profiles\.5: unknown device"),
        (RTU.replace("{5: sim-isolator}", "{7: sim-isolator}"), r"endpoints\.1: unit_profiles"),
        (RTU + RTU.replace("rs485", "again"), "two endpoints on one serial line"),
    ],
)
def test_a_bad_rtu_endpoint_is_refused_naming_the_field(
    tmp_path: Path, rtu: str, field: str
) -> None:
    with pytest.raises(SettingsError, match=field):
        AgentSettings.from_yaml(_write(tmp_path, GOOD + rtu))


def test_extra_profiles_come_from_profile_dir(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    iso = (
        (BUILTIN_DIR / "sim-isolator.yaml")
        .read_text()
        .replace("name: sim-isolator", "name: my-iso")
    )
    (profiles / "my-iso.yaml").write_text(iso)
    text = GOOD.replace("unit_ids: [1, 2]", "unit_ids: [1, 2]\n    unit_profiles: {2: my-iso}")
    with pytest.raises(SettingsError, match="unknown device profile 'my-iso'"):
        AgentSettings.from_yaml(_write(tmp_path, text))
    s = AgentSettings.from_yaml(_write(tmp_path, text + f"profile_dir: {profiles}\n"))
    assert "my-iso" in s.device_profiles()


def test_endpoints_from_the_environment_may_be_rtu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "POTR_ENDPOINTS",
        '[{"name": "line", "transport": "rtu", "serial_port": "/dev/ttyS0", "baudrate": 19200}]',
    )
    s = AgentSettings.from_yaml(_write(tmp_path, GOOD))
    assert isinstance(s.endpoints[0], RtuEndpointSettings)
    assert s.endpoints[0].baudrate == 19200
