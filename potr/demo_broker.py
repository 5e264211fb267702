"""The demo's broker, secure by default: a private Mosquitto with the regional brokers'
TLS listeners, passwords and rendered ACL when ``mosquitto`` is installed; else the
embedded amqtt with the same password and ACL files (no TLS: it says so loudly); or the
broker of ``POTR_MQTT_URL`` as given.

One broker serves the demo's three regions, so its ACL carries each region's gateway
patterns and the demo's ingest and config service are one identity each over every
region (``_ingest/demo``, ``_config/demo``); production runs one broker per region.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from broker_config.acl import render_acl
from broker_config.files import write_secret
from broker_config.passwords import amqtt_hash, mosquitto_hash, new_secret, render_password_file
from contracts.identities import BrokerIdentity, IdentityKind, username_for
from contracts.topics import Region
from potr.servers.amqtt_broker import EmbeddedAmqtt
from potr.servers.mosquitto import BrokerSecurity, PrivateMosquitto

BrokerKind = Literal["auto", "amqtt", "mosquitto"]
INGEST_USER = username_for(IdentityKind.INGEST, "demo")
CONFIG_USER = username_for(IdentityKind.CONFIG, "demo")


@dataclass(frozen=True)
class DemoBroker:
    """How every demo client reaches the broker and who it is there."""

    url: str
    #: "mosquitto", "amqtt" or "external".
    kind: str
    protocol: Literal["5", "3.1.1"]
    #: ``$share`` subscriptions (amqtt lacks them).
    shared: bool
    ca_file: Path | None = None
    #: username → password (empty for an external broker: its own settings apply).
    passwords: dict[str, SecretStr] = field(default_factory=dict)

    def password(self, username: str) -> SecretStr | None:
        return self.passwords.get(username)

    @property
    def secured(self) -> str:
        if self.kind == "mosquitto":
            return "TLS, per-gateway passwords and ACL"
        if self.kind == "amqtt":
            return "amqtt, demo only: passwords and ACL, no TLS"
        return "external broker"


def mosquitto_installed() -> bool:
    return bool(shutil.which("mosquitto")) or Path("/usr/sbin/mosquitto").exists()


async def start_demo_broker(
    stack: AsyncExitStack, kind: BrokerKind, gateways: dict[str, Region], workdir: Path
) -> DemoBroker:
    url = os.environ.get("POTR_MQTT_URL")
    if url:
        v311 = os.environ.get("POTR_MQTT_PROTOCOL") == "3.1.1"
        return DemoBroker(url, "external", "3.1.1" if v311 else "5", shared=True)
    if kind == "auto":
        kind = "mosquitto" if mosquitto_installed() else "amqtt"
    secrets = {u: new_secret() for u in [*gateways, INGEST_USER, CONFIG_USER]}
    identities = [BrokerIdentity(gw, region) for gw, region in gateways.items()]
    identities += [BrokerIdentity(INGEST_USER, None), BrokerIdentity(CONFIG_USER, None)]
    acl = render_acl(sorted(set(gateways.values())), identities)
    passwords = {u: SecretStr(s) for u, s in secrets.items()}
    if kind == "mosquitto":
        security = BrokerSecurity(
            render_password_file({u: mosquitto_hash(s) for u, s in secrets.items()}), acl
        )
        broker = await asyncio.to_thread(
            lambda: PrivateMosquitto(security=security, persistence=True).start()
        )
        stack.callback(broker.cleanup)
        return DemoBroker(broker.url, "mosquitto", "5", True, broker.ca_file, passwords)
    pw_file, acl_file = workdir / "amqtt.passwd", workdir / "amqtt.acl"
    write_secret(
        pw_file, render_password_file({u: amqtt_hash(s) for u, s in secrets.items()}).encode()
    )
    write_secret(acl_file, acl.encode())
    amqtt = await stack.enter_async_context(EmbeddedAmqtt(password_file=pw_file, acl_file=acl_file))
    return DemoBroker(amqtt.url, "amqtt", "3.1.1", False, None, passwords)
