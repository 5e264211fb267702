"""The embedded amqtt broker, run inside the demo's event loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseTopicPlugin
from amqtt.plugins.topic_checking import TopicAccessControlListPlugin
from amqtt.session import Session

from broker_config.amqtt_demo import AMQTT_LIMITS, amqtt_config
from potr.servers.ports import free_port

log = logging.getLogger(__name__)


class EmbeddedAmqtt:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._auth = {"password_file": password_file, "acl_file": acl_file}
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def __aenter__(self) -> EmbeddedAmqtt:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = Broker(amqtt_config(self.host, self.port, **self._auth))
        await self._broker.start()
        log.warning(AMQTT_LIMITS)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._broker is not None:
            await self._broker.shutdown()


class AclRules:
    """Mosquitto's reading of an ACL file as :func:`render_acl` writes it (``pattern``,
    ``user``, ``topic read|write|readwrite|deny``), for a broker that lacks it (the
    amqtt demo) and to test what a rendered file grants without a broker."""

    def __init__(self, text: str) -> None:
        self._patterns: list[tuple[str, str]] = []
        self._users: dict[str, list[tuple[str, str]]] = {}
        user: str | None = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            if word == "user":
                user = rest.strip()
                self._users.setdefault(user, [])
            elif word in ("pattern", "topic"):
                access, _, filt = rest.strip().partition(" ")
                if not filt:
                    access, filt = "readwrite", access
                target = (
                    self._patterns if word == "pattern" else self._users.setdefault(user or "", [])
                )
                target.append((access, filt.strip()))
            else:
                raise ValueError(f"ACL line not understood: {line!r}")

    def allows(self, username: str | None, topic: str, access: str) -> bool:
        """True when ``username`` may ``access`` ("read" or "write") ``topic``: a
        ``deny`` of the user's wins, then the user's topics, then the patterns."""
        if username is None or any(c in username for c in "+#"):
            return False  # Mosquitto refuses pattern checks for such names too
        own = self._users.get(username, [])
        if any(a == "deny" and _matches(f, topic) for a, f in own):
            return False
        rules = own + [(a, f.replace("%u", username)) for a, f in self._patterns]
        return any(a in (access, "readwrite") and _matches(f, topic) for a, f in rules)


def _matches(filt: str, topic: str) -> bool:
    return bool(TopicAccessControlListPlugin.topic_ac(topic, filt))


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
