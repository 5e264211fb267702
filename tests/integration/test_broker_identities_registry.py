"""The registry's broker identities and the auth files rendered from them (real
PostgreSQL; what a real broker makes of the files: test_scenario13_mqtt_identity.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from broker_config.passwords import mosquitto_hash, mosquitto_verify
from cloud.adapters.postgres import ConnectionPool, create_pool
from cloud.migrate import migrate
from cloud.registry import BrokerIdentities, GatewayIn, RegistryService, SiteIn
from cloud.registry.service import ConflictError, NotFoundError
from contracts.topics import Region
from potr.provisioning import ACL_FILE, PASSWORD_FILE, auth_files
from potr.servers.amqtt_broker import AclRules


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:  # type: ignore[type-arg]
    migrate(database_url)
    with create_pool(database_url, min_size=1, max_size=2) as p:
        yield p


def test_identities_render_into_the_brokers_files(pool: ConnectionPool) -> None:  # type: ignore[type-arg]
    registry, ids = RegistryService(pool), BrokerIdentities(pool)
    site = registry.add_site(SiteIn(name="s", region=Region.AU, time_zone="Australia/Sydney"))
    for gw in ("gw-pass", "gw-cert"):
        registry.add_gateway(GatewayIn(id=gw, site_id=site.id))
    ids.add("gw-pass", "au", "password", hashes=(mosquitto_hash("one"), "$argon2id$x"))
    ids.add("gw-cert", "au", "certificate")
    ids.add("_ingest/au-0", "au", "password", hashes=(mosquitto_hash("two"), "$argon2id$y"))

    with pytest.raises(ConflictError, match="already exists"):
        ids.add("gw-cert", "au", "certificate")
    with pytest.raises(NotFoundError, match="not registered"):
        ids.add("gw-ghost", "au", "certificate")

    files = auth_files(Region.AU, ids.for_region("au"))
    users = dict(line.split(":", 1) for line in files[PASSWORD_FILE].splitlines())
    assert sorted(users) == ["_ingest/au-0", "gw-pass"]  # certificates need no password
    assert mosquitto_verify("one", users["gw-pass"])

    ids.set_password("gw-pass", (mosquitto_hash("three"), "$argon2id$z"))
    ids.revoke("gw-cert")
    files = auth_files(Region.AU, ids.for_region("au"))
    users = dict(line.split(":", 1) for line in files[PASSWORD_FILE].splitlines())
    assert mosquitto_verify("three", users["gw-pass"])
    assert not mosquitto_verify("one", users["gw-pass"])
    rules = AclRules(files[ACL_FILE])
    # The revoked certificate identity is denied even its own topics (its TLS session
    # may outlive the CRL); the live one keeps them.
    assert not rules.allows("gw-cert", "potr/v1/au/gw-cert/telemetry", "write")
    assert rules.allows("gw-pass", "potr/v1/au/gw-pass/telemetry", "write")

    ids.revoke("gw-pass")
    users_after = auth_files(Region.AU, ids.for_region("au"))[PASSWORD_FILE]
    assert "gw-pass" not in users_after
    with pytest.raises(NotFoundError):
        ids.set_password("gw-pass", (mosquitto_hash("four"), "$argon2id$w"))
