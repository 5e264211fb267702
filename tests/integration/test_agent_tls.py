"""The agent over TLS to a real Mosquitto (issue 12, point 2, agent side): it verifies the
broker against the CA it is given — a broker signed by another CA, or a certificate for
another host name, is refused — and proves itself with a client certificate when the
listener asks for one, in production mode.

The broker is the regional shape (``PrivateMosquitto`` secure mode, its certificate from
the project's CA, ``broker_config.pki``), issued for ``localhost`` only so that reaching it
as 127.0.0.1 is a host-name mismatch; the gateway's client certificate has its id as CN.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker_config import pki as ca
from broker_config.acl import render_acl
from broker_config.passwords import mosquitto_hash, render_password_file
from contracts.identities import BrokerIdentity
from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import BrokerSecurity, PrivateMosquitto
from tests.integration.harness import running_agent
from tests.integration.witness import Witness
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.security]

GATEWAY = "tls-au-0001"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca.init(tmp_path / "ca")
    ca.init(tmp_path / "other-ca", name="some other CA")
    client = ca.issue_client(tmp_path / "ca", GATEWAY, tmp_path / "client")
    return {
        "dir": tmp_path / "ca",
        "ca": tmp_path / "ca" / "ca.crt",
        "other_ca": tmp_path / "other-ca" / "ca.crt",
        "client": (client.cert_file, client.key_file),
    }


@pytest.fixture
def broker(pki: dict[str, Any]) -> Iterator[PrivateMosquitto]:
    """Certificates on one listener, and a plain loopback one for the witness."""
    security = BrokerSecurity(
        passwords=render_password_file({"witness": mosquitto_hash("witness-secret")}),
        acl=render_acl(["au"], [BrokerIdentity(GATEWAY, "au")]) + "\nuser witness\ntopic read #\n",
        pki_dir=pki["dir"],
        dev_plain=True,
        server_names=("localhost",),
    )
    with PrivateMosquitto(persistence=False, security=security) as b:
        yield b


def _settings(url: str, tmp_path: Path, ca: Path, client: tuple[Path, Path]) -> AgentSettings:
    return AgentSettings(
        gateway_id=GATEWAY,
        region="au",
        env="production",
        mqtt_url=url,
        mqtt_ca_file=ca,
        mqtt_cert_file=client[0],
        mqtt_key_file=client[1],
        buffer_path=tmp_path / "buffer.sqlite",
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )


async def test_the_agent_connects_over_mutual_tls_in_production(
    broker: PrivateMosquitto, pki: dict[str, Any], tmp_path: Path
) -> None:
    settings = _settings(
        f"mqtts://localhost:{broker.cert_port}", tmp_path, pki["ca"], pki["client"]
    )
    with Witness(broker.port, GATEWAY, credentials=("witness", "witness-secret")) as w:
        await until(w.connected.is_set, 10, "the witness to subscribe")
        async with running_agent(settings) as agent:
            await until(agent.publisher.connected.is_set, 15, "the agent to connect over TLS")
            await until(lambda: w.of("birth"), 10, "the birth, through the TLS listener")
    assert w.of("birth")[0].doc["gateway_id"] == GATEWAY


@pytest.mark.parametrize(
    ("host", "ca", "why"),
    [
        ("localhost", "other_ca", "certificate verify failed"),  # another CA signed it
        ("127.0.0.1", "ca", "IP address mismatch"),  # issued for localhost only
    ],
)
async def test_a_broker_the_ca_does_not_vouch_for_is_refused(
    broker: PrivateMosquitto,
    pki: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    host: str,
    ca: str,
    why: str,
) -> None:
    settings = _settings(f"mqtts://{host}:{broker.cert_port}", tmp_path, pki[ca], pki["client"])
    with caplog.at_level(logging.WARNING, logger="edge_agent.publisher"):
        async with running_agent(settings) as agent:
            await until(lambda: why in caplog.text, 15, "the handshake to be refused")
            assert agent.publisher.sessions == 0
    assert not agent.publisher.connected.is_set()
