"""amqtt configuration for the embedded demo broker.

amqtt 0.12.1 gives no delivery or isolation guarantees (no QoS 1 redelivery on
reconnect, no ``$share``, retained messages leak across ACLs — pitfalls.md); every
guarantee is tested against Mosquitto. The demo says so when it starts.
"""

from __future__ import annotations

from typing import Any

AMQTT_LIMITS = (
    "embedded amqtt broker: demo only — no QoS 1 redelivery on reconnect, no shared "
    "subscriptions, retained messages bypass ACLs; use --broker mosquitto or POTR_MQTT_URL "
    "for guarantees"
)


def amqtt_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }
