"""The embedded amqtt broker, run inside the demo's event loop."""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

from amqtt.broker import Broker

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
