"""The rendered Mosquitto configuration (pure text)."""

from __future__ import annotations

from broker_config.mosquitto import MosquittoConfig, MosquittoListener


def test_the_broker_refuses_oversized_packets_by_default() -> None:
    text = MosquittoConfig((MosquittoListener(1883),), development=True).render()
    assert "max_packet_size 262144\n" in text
    # A broker-wide option: it must come before the first listener.
    assert text.index("max_packet_size") < text.index("listener ")


def test_the_packet_limit_is_a_setting() -> None:
    conf = MosquittoConfig((MosquittoListener(1883),), development=True, max_packet_size=1024)
    assert "max_packet_size 1024\n" in conf.render()
