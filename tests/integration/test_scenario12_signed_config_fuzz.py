"""Reliability scenario 12: forged, mis-addressed, replayed, stale, expired and truncated
documents are all refused; the applied config stays as it was (read from the simulated
device) and the simulator's write log shows no write at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest

from contracts.signing import SigningKey, sign_document
from simulators.device_site import DeviceSite
from tests.integration.control_harness import (
    INVERTER,
    Cloud,
    agent_settings,
    cloud_for,
    control_site,
    device_ids,
    running_agent,
    write_public_key,
)

pytestmark = [pytest.mark.integration, pytest.mark.security]


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    async with control_site(f"s12-{uuid4().hex[:6]}") as sim:
        yield sim


def _forged(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**doc, **changes}  # the signature was made over the original


def _unsigned(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("sig", "kid")}


def _bad_commands(cloud: Cloud, inverter: str, stranger: SigningKey) -> list[tuple[str, Any]]:
    good = cloud.command("set_power_limit", inverter, {"pct": 10})
    other_gw = cloud.command("set_power_limit", inverter, {"pct": 10}, sign=False)
    wrong_types = cloud.command("set_power_limit", inverter, {"pct": 10}, sign=False)
    return [
        ("forged", _forged(good, args={"pct": 99})),
        ("untrusted", sign_document(_unsigned(good), stranger)),
        ("unsigned", _unsigned(good)),
        ("other gateway", sign_document(other_gw | {"gateway_id": "gw-someone-else"}, cloud.key)),
        ("expired", cloud.command("set_power_limit", inverter, {"pct": 10}, expires_in_s=-1)),
        ("wrong types", sign_document(wrong_types | {"expires_at": 12345}, cloud.key)),
        ("out of range", cloud.command("set_power_limit", inverter, {"pct": 100.5})),
    ]


async def test_every_bad_document_is_refused_and_nothing_is_written(
    mosquitto_url: str, site: DeviceSite, tmp_path: Path
) -> None:
    key, stranger = SigningKey.generate(), SigningKey.generate()
    gw = f"gw-s12-{uuid4().hex[:8]}"
    ids = device_ids(site)
    inverter = ids[INVERTER]
    settings = agent_settings(
        mosquitto_url, site, tmp_path, gw, [write_public_key(key, tmp_path / "k.pem")]
    )
    async with cloud_for(mosquitto_url, gw, key) as cloud, running_agent(settings) as agent:
        await cloud.until(lambda: cloud.devices_discovered(set(ids.values())), 15, "birth")
        # The applied baseline: a config and a command, each written once.
        applied = cloud.config({inverter: {"power_limit_pct": 75}}, version=5)
        assert (await cloud.config_result(applied))["status"] == "applied"
        done = cloud.command("set_power_limit", inverter, {"pct": 75})
        assert (await cloud.command_result(done))["status"] == "done"
        writes = len(site.write_log)

        answers: dict[str, dict[str, Any]] = {}
        for what, doc in [*_bad_commands(cloud, inverter, stranger), ("replayed", done)]:
            answers[f"cmd {what}"] = await cloud.command_result(doc)
        for what, payload in [
            ("truncated", orjson.dumps(cloud.command("ping", None))[:-9]),
            ("not JSON", b"\xff\xfe not json"),
            ("a list", b"[1, 2, 3]"),
        ]:
            refusals = sum(agent.control.stats.refusals.values())
            await cloud.send("cmd", payload)  # no id to answer: logged and counted
            assert (await cloud.command_result(cloud.command("ping", None)))["status"] == "done"
            assert sum(agent.control.stats.refusals.values()) == refusals + 1, what

        good_config = cloud.config({inverter: {"power_limit_pct": 20}}, version=9, sign=False)
        bad_configs: list[tuple[str, Any]] = [
            ("forged", _forged(sign_document(good_config, key), version=10)),
            ("untrusted", sign_document(good_config, stranger)),
            ("unsigned", good_config),
            ("other gateway", sign_document(good_config | {"gateway_id": "gw-other1"}, key)),
            ("stale", cloud.config({inverter: {"power_limit_pct": 20}}, version=4)),
            ("wrong types", sign_document(good_config | {"version": "9"}, key)),
            ("truncated", orjson.dumps(sign_document(good_config, key))[:-20]),
            ("not JSON", b"<config/>"),
        ]
        for what, doc in bad_configs:
            state = await cloud.config_result(doc)
            answers[f"config {what}"] = state
            assert state["version"] == 5, (what, state)  # nothing moved
            assert state["detail"].startswith("refused config: "), (what, state)
        # Verified but expired: handled (the version moves), nothing written.
        expired = cloud.config({inverter: {"power_limit_pct": 20}}, version=11, not_after_s=-1)
        answers["config expired"] = state = await cloud.config_result(expired)
        assert (state["version"], state["status"]) == (11, "failed")
        assert state["detail"].startswith("expired")

        for what, answer in answers.items():
            if what.startswith("cmd"):
                assert answer["status"] in ("rejected", "expired"), (what, answer)
                assert answer["detail"], (what, answer)
        assert answers["cmd expired"]["status"] == "expired"
        assert answers["cmd replayed"]["detail"].startswith("replayed")
        assert answers["cmd forged"]["detail"].startswith("bad signature")
        assert answers["cmd untrusted"]["detail"].startswith("untrusted key")
        assert answers["cmd unsigned"]["detail"].startswith("unsigned")
        assert answers["cmd other gateway"]["detail"].startswith("wrong gateway")
        assert answers["config stale"]["detail"].startswith("refused config: stale version")
        assert len(site.write_log) == writes, site.write_log[writes:]
        assert site.point(INVERTER, "704.WMaxLimPct") == 75
