"""A MOSIE pushes a grid-code profile from their job's page (issue 18.4) over
``api_world`` on real PostgreSQL: the same rules as a push over MQTT, the session
vouching for the employee.

Account A's site has a job on site with A's employee; the config service learns the job
and the site's gateway (now with a DER inverter) as its bus consumers would, from
``workorder.changed`` and a birth. Expected settings come from
shared/design/grid-codes.md §1, region B volt-var [V Western Power]: 205/+30, 220/0,
235/0, 255/-40 (V / % rated VA), written as % of 230 V nominal.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud.bootstrap import create_tracker
from cloud.config import ConfigService, ConfigSettings, ConfigTracker
from cloud.events.workorders import WorkOrderChanged
from cloud.identity import Role
from contracts.timeutil import utc_now
from tests.integration.api_world import (
    Tenant,
    World,
    api_world,
    form_fields,
    page_client,
    private_database,
)
from tests.integration.der_birth import der_inverter_birth

pytestmark = pytest.mark.integration

DER = "SN-DER-PORTAL"


@dataclass(frozen=True)
class Bench:
    world: World
    config: ConfigService
    tracker: ConfigTracker


@pytest.fixture(scope="module")
def bench(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    key_dir: Path = tmp_path_factory.mktemp("ui-grid-push")
    with private_database(postgres_server_url) as url, api_world(url, key_dir) as world:
        assert world.config is not None
        settings = ConfigSettings(database_url=url, signing_key_file=key_dir / "cloud.pem")
        tracker = create_tracker(settings, world.pool)
        a = world.tenants["A"]
        assert tracker.apply_birth(
            uuid.uuid4(), "au", utc_now(), der_inverter_birth(a.gateway, DER, boot_id="boot-der")
        )
        assert tracker.apply_work_order(uuid.uuid4(), _job(a, "on_site"))
        yield Bench(world, world.config, tracker)


def _job(t: Tenant, status: str) -> WorkOrderChanged:
    """Dispatch's event for ``t``'s seeded job, as the config service consumes it."""
    return WorkOrderChanged(
        work_order_id=t.work_order,
        region=t.region.value,
        site_id=t.site,
        gateway_ids=[t.gateway],
        type="isolator_fault",
        priority="P2",
        status=status,
        on_site=status == "on_site",
        at=utc_now(),
        assignee=t.employee,
    )


def _versions(bench: Bench, gateway: str) -> int:
    return len(bench.config.show_config(gateway).history)


def test_the_jobs_technician_pushes_region_b_once_per_form(bench: Bench) -> None:
    a = bench.world.tenants["A"]
    job_url = f"/ui/au/workorders/{a.work_order}"
    before = _versions(bench, a.gateway)
    with page_client(bench.world, Role.MOSIE) as client:
        page = client.get(job_url)
        assert page.status_code == 200
        assert 'id="grid-code"' in page.text
        assert '<option value="au-b-2020"' in page.text
        assert 'value="es-en50549-1"' not in page.text  # only the region's profiles
        form = form_fields(client, profile="au-b-2020", key="push-form-0001")
        first = client.post(f"{job_url}/grid-code", data=form, follow_redirects=False)
        again = client.post(f"{job_url}/grid-code", data=form, follow_redirects=False)
        assert (first.status_code, again.status_code) == (303, 303)
        assert first.headers["location"] == f"{job_url}#grid-code"
        assert _versions(bench, a.gateway) == before + 1  # the double tap signed once

        desired = bench.config.show_config(a.gateway).desired
        assert desired is not None
        assert desired.profile["id"] == "au-b-2020"
        assert desired.created_by == a.employee
        assert desired.reason == f"technician push, work order {a.work_order}"
        want_v = [v / 230 * 100 for v in (205, 220, 235, 255)]
        got = desired.devices[DER]
        assert all(
            math.isclose(g, w, abs_tol=1e-4)
            for g, w in zip(got["volt_var_v_pct"], want_v, strict=True)
        )
        assert got["volt_var_q_pct"] == pytest.approx([30, 0, 0, -40], abs=1e-6)

        listed = client.get(job_url).text
        assert 'data-push-outcome="accepted" data-push-profile="au-b-2020"' in listed
        assert listed.count('data-push-outcome="accepted"') == 1


def test_refusals_are_the_jobs_page_with_the_reason_and_change_nothing(bench: Bench) -> None:
    a = bench.world.tenants["A"]
    job_url = f"/ui/au/workorders/{a.work_order}"
    before = _versions(bench, a.gateway)
    with page_client(bench.world, Role.MOSIE) as client:
        # Spain's profile under an Australian job: the rules' refusal, 409.
        es = client.post(
            f"{job_url}/grid-code",
            data=form_fields(client, profile="es-en50549-1", key="k-es-form1"),
        )
        assert es.status_code == 409
        assert 'id="refusal"' in es.text
        assert "es-en50549-1" in es.text
        # No such profile: 422.
        unknown = client.post(
            f"{job_url}/grid-code",
            data=form_fields(client, profile="au-z-1999", key="k-z-form1"),
        )
        assert unknown.status_code == 422
        # A malformed profile id never reaches the service: 422.
        bad = client.post(
            f"{job_url}/grid-code", data=form_fields(client, profile="../x", key="k-bad-1-form-key")
        )
        assert bad.status_code == 422
        # Another account's job is not this MOSIE's: not found.
        other = bench.world.tenants["B"].work_order
        theirs = client.post(
            f"/ui/au/workorders/{other}/grid-code",
            data=form_fields(client, profile="au-b-2020", key="k-other-1-form-key"),
        )
        assert theirs.status_code == 404
    assert _versions(bench, a.gateway) == before
    # Office roles change settings through rollouts and the gateway page, not this form.
    for role in (Role.OPERATOR, Role.ADMIN, Role.SUPPORT, Role.CUSTOMER):
        with page_client(bench.world, role) as client:
            answer = client.post(
                f"{job_url}/grid-code",
                data=form_fields(client, profile="au-b-2020", key=f"k-{role.value}-form-key"),
            )
            assert answer.status_code == 403, role
            if role != Role.CUSTOMER:
                assert 'id="grid-code"' not in client.get(job_url).text


def test_once_the_job_has_left_the_site_the_push_is_refused(bench: Bench) -> None:
    a = bench.world.tenants["A"]
    job_url = f"/ui/au/workorders/{a.work_order}"
    before = _versions(bench, a.gateway)
    # The config service hears the job was resolved (dispatch's page may lag behind).
    assert bench.tracker.apply_work_order(uuid.uuid4(), _job(a, "resolved"))
    try:
        with page_client(bench.world, Role.MOSIE) as client:
            late = client.post(
                f"{job_url}/grid-code",
                data=form_fields(client, profile="au-a-2020", key="k-late-1-form-key"),
            )
            assert late.status_code == 409
            assert "no accepted, en route or on-site work order" in late.text
        assert _versions(bench, a.gateway) == before
    finally:
        assert bench.tracker.apply_work_order(uuid.uuid4(), _job(a, "on_site"))
