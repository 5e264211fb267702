"""amqtt configuration for the embedded demo broker, with credentials and the same ACL
file Mosquitto reads.

amqtt 0.12.1 gives no delivery or isolation guarantees (no QoS 1 redelivery on
reconnect, no ``$share``, retained messages sent on CONNECT bypass its receive ACL —
pitfalls.md); every guarantee is tested against Mosquitto. The demo says so when it
starts. Its built-in topic ACL has no ``%u`` substitution, so the demo's topic plugin
(:class:`potr.servers.amqtt_broker.PotrAclPlugin`) applies the rendered Mosquitto ACL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AMQTT_LIMITS = (
    "embedded amqtt broker: demo only — no TLS, no QoS 1 redelivery on reconnect, no shared "
    "subscriptions, and retained messages reach any subscriber on connect whatever the ACL; "
    "passwords and the per-gateway ACL are enforced. Install mosquitto (the demo then uses "
    "it with TLS) or set POTR_MQTT_URL for guarantees"
)

#: The amqtt adapter's topic plugin that reads the Mosquitto ACL file.
ACL_PLUGIN = "potr.servers.amqtt_broker.PotrAclPlugin"


def amqtt_config(
    host: str, port: int, *, password_file: Path | None = None, acl_file: Path | None = None
) -> dict[str, Any]:
    """Anonymous only when no password file is given (tests of amqtt itself)."""
    plugins: dict[str, Any] = {}
    if password_file is None:
        plugins["amqtt.plugins.authentication.AnonymousAuthPlugin"] = {"allow_anonymous": True}
    else:
        plugins["amqtt.plugins.authentication.FileAuthPlugin"] = {
            "password_file": str(password_file)
        }
    if acl_file is not None:
        plugins[ACL_PLUGIN] = {"acl_file": str(acl_file)}
    return {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": plugins}
