"""Assignment by location and connection approvals on real PostgreSQL.

A gateway registered at a Western Power site (the registry's ``gateway.registered``)
whose first birth lists a DER inverter gets its first config without a person: region B's
settings, set by ``system`` with the rule named. A change beyond the site's connection
approval is refused and audited with the approval's reference; one within is accepted
and carries it.

Expected values are computed here by hand from shared/design/grid-codes.md §1: region B
volt-var 205/+30, 220/0, 235/0, 255/-40 (V/% rated VA) [V Western Power], written as % of
230 V nominal; F> 52 Hz, max disconnect 0.2 s [V Tesla App. H].
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import create_config_service, create_tracker
from cloud.config import ConfigIn, ConfigService, ConfigSettings, ConfigTracker, RefusedError
from cloud.config.keys import write_key_file
from cloud.config.rollout_models import RolloutIn, RolloutTarget
from cloud.config.site_profiles import ConnectionApprovalIn
from cloud.events.types import GatewayRegistration
from cloud.migrate import migrate
from contracts.messages import ProfileRef
from contracts.timeutil import utc_now
from contracts.topics import Region
from tests.integration.der_birth import der_inverter_birth

pytestmark = pytest.mark.integration
Pool = ConnectionPool[Connection[Any]]

INV = "SN-DER-1"
SITE = 101  # an au site id (101 % 4 == 1: cloud.regional_ids)


@dataclass
class Stack:
    pool: Pool
    service: ConfigService
    tracker: ConfigTracker


@pytest.fixture
def stack(database_url: str, tmp_path: Path) -> Iterator[Stack]:
    migrate(database_url)
    key_file = tmp_path / "cloud.pem"
    write_key_file(key_file, demo=True)
    settings = ConfigSettings(database_url=database_url, signing_key_file=key_file)
    pool = create_pool(database_url, max_size=4, name="test-site-profiles")
    try:
        yield Stack(pool, create_config_service(settings, pool), create_tracker(settings, pool))
    finally:
        pool.close()


def _arrive(
    stack: Stack, gateway_id: str, *, utility: str = "Western Power", site: int = SITE
) -> None:
    """The registry registers the gateway at ``site``, then its agent's first birth."""
    registration = GatewayRegistration(
        gateway_id=gateway_id,
        site_id=site,
        region=Region.AU,
        time_zone="Australia/Perth",
        utility=utility,
        latitude=-31.95,
        longitude=115.86,
    )
    assert stack.tracker.apply_registration(uuid.uuid4(), utc_now(), registration)
    birth = der_inverter_birth(gateway_id, INV)
    assert stack.tracker.apply_birth(uuid.uuid4(), "au", utc_now(), birth)


def _close(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(
        math.isclose(g, w, abs_tol=1e-4) for g, w in zip(got, want, strict=True)
    )


def test_a_new_gateway_gets_its_sites_profile_without_a_person(stack: Stack) -> None:
    _arrive(stack, "gw-wp-1")
    assert stack.service.provision_new() == 1

    desired = stack.service.show_config("gw-wp-1").desired
    assert desired is not None
    assert desired.profile["id"] == "au-b-2020"
    assert desired.created_by == "system"
    assert "au-western-power" in desired.reason
    device = desired.devices[INV]
    assert _close(device["volt_var_v_pct"], [v / 230 * 100 for v in (205, 220, 235, 255)])
    assert _close(device["volt_var_q_pct"], [30, 0, 0, -40])
    assert _close(device["trip_hf_must_hz"], [52.0])
    assert _close(device["trip_hf_must_s"], [0.2])

    assert stack.service.provision_new() == 0  # it has a config: never again by itself
    view = stack.service.sites.grid_code("au", SITE)
    assert view.profile is not None
    assert (view.profile.id, view.rule, view.level) == ("au-b-2020", "au-western-power", "utility")
    assert view.unverified  # region B's volt-watt is [U] in grid-codes.md


def test_a_change_beyond_the_connection_approval_is_refused_and_audited(stack: Stack) -> None:
    _arrive(stack, "gw-wp-2")
    approval = ConnectionApprovalIn(
        reference="WP-2026-77", profile="au-b-2020", export_limit_w=3000.0
    )
    stack.service.sites.set_approval("au", SITE, approval, "operator-1")
    # provisioned within the approval: 3000 W of a 5000 W inverter
    assert stack.service.provision_new() == 1
    first = stack.service.show_config("gw-wp-2").desired
    assert first is not None
    assert first.devices[INV]["power_limit_pct"] == 60.0
    assert first.devices[INV]["power_limit_enable"] == 1

    label = ProfileRef(id="au-b-2020", region=Region.AU, version=1)
    beyond = [
        {"power_limit_pct": 100.0, "power_limit_enable": 1},  # 5000 W > 3000 W
        {"power_limit_pct": 60.0, "power_limit_enable": 1, "trip_hf_must_hz": [55.0]},
    ]
    for settings in beyond:
        with pytest.raises(RefusedError, match="beyond connection approval WP-2026-77"):
            stack.service.set_config(
                "gw-wp-2", ConfigIn(profile=label, devices={INV: settings}, reason="t"), "op"
            )
    with pytest.raises(RefusedError, match="region"):
        stack.service.set_config(
            "gw-wp-2",
            ConfigIn(
                profile=ProfileRef(id="ieee1547-2018-b-ii", region=Region.US, version=1),
                devices={INV: {"power_limit_pct": 10.0, "power_limit_enable": 1}},
                reason="t",
            ),
            "op",
        )
    within = {"power_limit_pct": 50.0, "power_limit_enable": 1, "trip_hf_must_hz": [52.0]}
    done = stack.service.set_config(
        "gw-wp-2", ConfigIn(profile=label, devices={INV: within}, reason="t"), "op"
    )
    assert done.version == first.version + 1

    audit = stack.service.audit("gw-wp-2")
    refused = [a for a in audit if a.outcome == "refused" and a.action == "config.set"]
    # the region change meets the gateway's own region check first
    assert [a.detail.get("approval") for a in refused] == [None, "WP-2026-77", "WP-2026-77"]
    accepted = [a for a in audit if a.outcome == "pending"]
    assert {a.action for a in accepted} == {"config.set", "config.provision"}
    assert all(a.detail["approval"] == "WP-2026-77" for a in accepted)


def test_a_rollout_targets_the_gateways_of_a_network_operator_or_of_listed_sites(
    stack: Stack,
) -> None:
    # Three au sites (ids ≡ 1 mod 4): two on Western Power's network, one on SA Power
    # Networks'; a second gateway at the first site.
    for gateway_id, site, utility in (
        ("gw-t-1", 201, "Western Power"),
        ("gw-t-1b", 201, "Western Power"),
        ("gw-t-2", 205, "Western Power"),
        ("gw-t-3", 209, "SA Power Networks"),
    ):
        _arrive(stack, gateway_id, utility=utility, site=site)
    profile = ProfileRef(id="au-b-2020", region=Region.AU, version=1)

    def targeted(target: RolloutTarget) -> set[str]:
        made = stack.service.rollouts.create(
            "au", RolloutIn(profile=profile, target=target, reason="targeting test"), "op"
        )
        stack.service.rollouts.act(made.id, "abort", "only the target mattered", "op", region="au")
        return {step.gateway_id for step in made.gateway_steps}

    # The operator's name in any case: one network operator.
    assert targeted(RolloutTarget(utility="western power")) == {"gw-t-1", "gw-t-1b", "gw-t-2"}
    assert targeted(RolloutTarget(sites=[201, 209])) == {"gw-t-1", "gw-t-1b", "gw-t-3"}
    # Criteria narrow each other: Western Power's gateways among sites 201 and 209.
    both = RolloutTarget(sites=[201, 209], utility="Western Power")
    assert targeted(both) == {"gw-t-1", "gw-t-1b"}
    with pytest.raises(RefusedError):  # no gateway: an empty target is refused
        targeted(RolloutTarget(utility="Horizon Power"))
