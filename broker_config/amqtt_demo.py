"""amqtt configuration for the embedded demo broker, with credentials and the same ACL
file Mosquitto reads.

amqtt 0.12.1 gives no delivery or isolation guarantees (no QoS 1 redelivery on
reconnect, no ``$share``, retained messages sent on CONNECT bypass its receive ACL —
pitfalls.md); every guarantee is tested against Mosquitto. The demo says so when it
starts. Its built-in topic ACL has no ``%u`` substitution, so :class:`PotrAclPlugin`
applies the rendered Mosquitto ACL (:class:`broker_config.acl.AclRules`) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseTopicPlugin
from amqtt.session import Session

from broker_config.acl import AclRules

AMQTT_LIMITS = (
    "embedded amqtt broker: demo only — no TLS, no QoS 1 redelivery on reconnect, no shared "
    "subscriptions, and retained messages reach any subscriber on connect whatever the ACL; "
    "passwords and the per-gateway ACL are enforced. Install mosquitto (the demo then uses "
    "it with TLS) or set POTR_MQTT_URL for guarantees"
)


class PotrAclPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt is untyped
    """Publishes and deliveries checked against the Mosquitto ACL file (``%u`` =
    username); subscriptions are granted, as Mosquitto does, and filtered at delivery."""

    @dataclass
    class Config:
        acl_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._rules = AclRules(Path(self._get_config_option("acl_file", "")).read_text())

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        if topic is None or session is None:
            return False
        if action == Action.SUBSCRIBE:
            return True
        access = "write" if action == Action.PUBLISH else "read"
        return self._rules.allows(session.username, topic, access)


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
        plugins[f"{__name__}.PotrAclPlugin"] = {"acl_file": str(acl_file)}
    return {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": plugins}
