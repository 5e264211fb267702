"""Agent settings: YAML then environment; bad files refused with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.settings import AgentSettings, SettingsError

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
    assert s.mqtt_target() == ("broker.example", 1883, "gw-au-0001", "s3cret")
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
