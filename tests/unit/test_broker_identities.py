"""Broker usernames, the rendered ACL and password hashes (pure; the broker's own
verdicts on them are tested in tests/integration/test_scenario13_mqtt_identity.py)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from argon2 import PasswordHasher

from broker_config.acl import render_acl
from broker_config.passwords import (
    amqtt_hash,
    mosquitto_hash,
    mosquitto_verify,
    render_password_file,
)
from contracts.identities import (
    BrokerIdentity,
    IdentityError,
    IdentityKind,
    parse_username,
    username_for,
)


def test_service_and_technician_usernames_never_look_like_a_gateway() -> None:
    assert username_for("gateway", "gw-au-1") == "gw-au-1"
    assert username_for("ingest", "au-0") == "_ingest/au-0"
    assert username_for("technician", "alice") == "_tech/alice"
    assert parse_username("_config/au") == (IdentityKind.CONFIG, "au")
    assert parse_username("gw-au-1") == (IdentityKind.GATEWAY, "gw-au-1")
    for bad in ("_gw", "GW-1", "a", "_tech/", "_tech/a/b", "_tech/+", "_who/x", "x:y"):
        with pytest.raises(IdentityError):
            parse_username(bad)
    with pytest.raises(IdentityError):
        username_for("technician", "al#ice")
    with pytest.raises(IdentityError):
        username_for("gateway", "_ingest")


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def test_gateway_patterns_are_per_kind_with_the_region_written_out() -> None:
    lines = _lines(render_acl(["au"], []))
    assert lines == [
        "pattern write potr/v1/au/%u/birth",
        "pattern write potr/v1/au/%u/cmd_ack",
        "pattern write potr/v1/au/%u/config_state",
        "pattern write potr/v1/au/%u/event",
        "pattern write potr/v1/au/%u/state",
        "pattern write potr/v1/au/%u/telemetry",
        "pattern read potr/v1/au/%u/cmd",
        "pattern read potr/v1/au/%u/config",
        "pattern read potr/v1/au/%u/stored",
        "pattern write potr/v1/au/%u/config_req",
        "pattern read potr/v1/au/%u/config_resp",
    ]
    assert not any("#" in ln or "/+/%u" in ln for ln in lines)


def test_services_get_their_own_blocks_and_a_blocked_identity_is_denied_all() -> None:
    ids = [
        BrokerIdentity("_ingest/au-0", "au"),
        BrokerIdentity("_config/au", "au"),
        BrokerIdentity("gw-one", "au", blocked=True),
        BrokerIdentity("_ingest/us-0", "us"),  # another region's broker: not rendered
    ]
    text = render_acl(["au"], ids)
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in text.split("\n\n") if "user " in b}
    assert blocks["user _ingest/au-0"] == [
        "topic read potr/v1/au/+/birth",
        "topic read potr/v1/au/+/cmd_ack",
        "topic read potr/v1/au/+/config_state",
        "topic read potr/v1/au/+/event",
        "topic read potr/v1/au/+/state",
        "topic read potr/v1/au/+/telemetry",
        "topic write potr/v1/au/+/stored",
    ]
    assert blocks["user _config/au"] == [
        "topic write potr/v1/au/+/cmd",
        "topic write potr/v1/au/+/config",
        "topic read potr/v1/au/_tech/+/config_req",
        "topic write potr/v1/au/_tech/+/config_resp",
    ]
    assert blocks["user gw-one"] == ["topic deny #"]
    assert "_ingest/us-0" not in text


def test_the_mosquitto_hash_is_pbkdf2_sha512_in_its_7_format() -> None:
    salt = b"0123456789ab"
    hashed = mosquitto_hash("s3cret", salt=salt)
    # Independent computation of the format mosquitto_passwd writes.
    digest = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)
    assert hashed == f"$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert mosquitto_verify("s3cret", mosquitto_hash("s3cret"))
    assert not mosquitto_verify("wrong", hashed)
    assert not mosquitto_verify("s3cret", "garbage")


def test_amqtt_hash_is_argon2id_and_the_password_file_refuses_colons() -> None:
    hashed = amqtt_hash("pw")
    assert hashed.startswith("$argon2id$")
    assert PasswordHasher().verify(hashed, "pw")
    assert render_password_file({"b": "h2", "a": "h1"}) == "a:h1\nb:h2\n"
    with pytest.raises(ValueError, match="cannot go into"):
        render_password_file({"a:b": "h"})


def test_a_monitor_reads_only_the_brokers_statistics() -> None:
    text = render_acl(["au"], [BrokerIdentity("_monitor/ops", "au")])
    block = [b.strip() for b in text.split("\n\n") if b.startswith("user _monitor/ops")]
    assert block == ["user _monitor/ops\ntopic read $SYS/#"]
