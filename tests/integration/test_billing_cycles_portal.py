"""Billing cycles run and inspected by admins (issue 19 point 6): REST and the portal's
screens over ``api_world``'s whole app, with real cycles in the background over real
meter data (:mod:`tests.integration.billing_sites`).

Two billable US sites besides the world's (whose accounts are on no plan): a metered one
whose contract starts on 29 October 2026, its meter rising 500 Wh every local hour
through 31 October, and a silent one (installed 1 October) whose meter never reported.
October 2026 billed by hand: 29-31 October in Los Angeles are three 24-hour days (DST
ends on 1 November), 72 hours x 500 Wh = 36 kWh at the plan's first-year 0.15000 USD =
5.40 net; California taxes electricity sales at 0 %: tax 0.00, gross 5.40. The silent
site is skipped, the reason naming its meter. Periods before 29 October skip both sites
(the contracts start after them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cloud.billing import create_cycles_router
from cloud.bootstrap import create_billing_service
from cloud.identity import Role
from contracts.topics import Region
from tests.api_tokens import bearer
from tests.integration.api_world import World, form_fields, page_client, private_world
from tests.integration.billing_sites import (
    MeteredSite,
    bucketed_mwh,
    seed_metered_site,
    seed_silent_site,
)
from tests.waiting import until_sync

pytestmark = pytest.mark.integration

OCTOBER = date(2026, 10, 1)
CONTRACT_START = date(2026, 10, 29)
ADMIN_SUBJECT = "usr_cycles_admin"
#: Bounded wait for a background cycle of two sites (well under a second here).
CYCLE_WAIT_S = 30.0


@dataclass(frozen=True)
class Sites:
    metered: MeteredSite
    silent: int
    silent_serial: str


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    key_dir: Path = tmp_path_factory.mktemp("cycles")
    with private_world(postgres_server_url, key_dir) as built:
        yield built


@pytest.fixture(scope="module")
def sites(world: World) -> Sites:
    metered = seed_metered_site(world.pool, CONTRACT_START, 72, 500, device_id=990_001)
    assert bucketed_mwh(world.pool, metered.device_id) == 72 * 500 * 1000
    silent, serial = seed_silent_site(world.pool, date(2026, 10, 1))
    return Sites(metered, silent, serial)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as c:
        yield c


def _admin() -> dict[str, str]:
    return bearer(Role.ADMIN, subject=ADMIN_SUBJECT)


def _billed(client: TestClient, url: str) -> bool:
    return bool(client.get(url, headers=_admin()).json()["state"] == "billed")


def _cycles(world: World) -> int:
    with world.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM billing.cycles").fetchone()
    assert row is not None
    return int(row[0])


def test_an_admin_starts_a_month_that_bills_in_the_background(
    world: World, client: TestClient, sites: Sites
) -> None:
    started = client.post(
        "/api/v1/us/billing/cycles", json={"first_day": "2026-10-01"}, headers=_admin()
    )
    assert started.status_code == 202, started.text
    body = started.json()
    url = f"/api/v1/us/billing/cycles/{body['cycle']['id']}"
    assert (body["outcome"], body["url"], started.headers["location"]) == ("started", url, url)
    until_sync(lambda: _billed(client, url), CYCLE_WAIT_S, "the October cycle billed")

    cycle = client.get(url, headers=_admin()).json()
    assert (cycle["region"], cycle["first_day"], cycle["last_day"], cycle["cycle"]) == (
        "us", "2026-10-01", "2026-10-31", "monthly",
    )  # fmt: skip
    assert (cycle["run_by"], cycle["sites_total"], cycle["sites_done"]) == (ADMIN_SUBJECT, 2, 2)
    assert (cycle["invoices"], cycle["skipped"]) == (1, 1)
    assert cycle["finished_at"] is not None
    (document,) = cycle["documents"]
    assert (document["site_id"], document["account_id"], document["kind"]) == (
        sites.metered.site_id, sites.metered.account_id, "invoice",
    )  # fmt: skip
    assert (document["currency"], document["net"], document["tax"], document["gross"]) == (
        "USD", "5.40", "0.00", "5.40",
    )  # fmt: skip
    assert cycle["totals"] == [
        {"currency": "USD", "documents": 1, "net": "5.40", "tax": "0.00", "gross": "5.40"}
    ]
    (skipped,) = cycle["skipped_sites"]
    assert skipped["site_id"] == sites.silent
    assert "MeterMissingError" in skipped["reason"]
    assert sites.silent_serial in skipped["reason"]
    listed = client.get("/api/v1/us/billing/cycles", headers=_admin()).json()
    assert [(c["id"], c["invoices"], c["skipped"]) for c in listed] == [(cycle["id"], 1, 1)]

    # Started again: the cycle that billed it, nothing run or issued a second time.
    again = client.post(
        "/api/v1/us/billing/cycles", json={"first_day": "2026-10-01"}, headers=_admin()
    )
    assert again.status_code == 200
    assert (again.json()["outcome"], again.json()["cycle"]["id"]) == ("already_billed", cycle["id"])
    assert client.get(url, headers=_admin()).json()["invoices"] == 1

    # The cycle's page: the invoice with its total, the skipped site with its reason.
    with page_client(world, Role.ADMIN) as pages:
        page = pages.get(f"/ui/us/billing/cycles/{cycle['id']}")
    assert page.status_code == 200
    assert f'data-document="{document["number"]}"' in page.text
    assert 'data-metric="gross" data-value="5.40"' in page.text
    assert sites.silent_serial in page.text
    assert 'data-state="billed"' in page.text
    assert "hx-trigger" not in page.text  # nothing left to follow


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"first_day": "2026-10-02"}, "does not start a monthly billing period"),
        ({"first_day": "2026-08-01", "cycle": "quarterly"}, "does not start a quarterly"),
        ({"first_day": "2019-12-01"}, "greater than or equal"),
        ({"first_day": "2026-10-01", "cycle": "yearly"}, "monthly"),
        ({"first_day": "2026-10-01", "by": "me"}, "Extra inputs"),
        ({"first_day": "not a day"}, "date"),
    ],
)
def test_a_period_that_is_no_month_or_quarter_is_refused(
    world: World, client: TestClient, body: dict[str, Any], said: str
) -> None:
    before = _cycles(world)
    answer = client.post("/api/v1/us/billing/cycles", json=body, headers=_admin())
    assert answer.status_code == 422
    assert said in answer.text
    assert _cycles(world) == before


def test_a_period_not_ended_everywhere_in_the_region_is_refused(
    world: World, client: TestClient
) -> None:
    this_month = datetime.now(UTC).date().replace(day=1)
    before = _cycles(world)
    answer = client.post(
        "/api/v1/us/billing/cycles", json={"first_day": this_month.isoformat()}, headers=_admin()
    )
    assert answer.status_code == 422
    assert "has not ended in every time zone of the region" in answer.json()["detail"]
    assert _cycles(world) == before


def test_only_admins_start_cycles_and_a_region_sees_its_own(
    world: World, client: TestClient
) -> None:
    before = _cycles(world)
    for role in (Role.OPERATOR, Role.SUPPORT, Role.MOSIE, Role.CUSTOMER):
        start = client.post(
            "/api/v1/us/billing/cycles", json={"first_day": "2026-07-01"}, headers=bearer(role)
        )
        assert start.status_code == 403, role
    assert _cycles(world) == before
    assert client.get("/api/v1/au/billing/cycles", headers=bearer(Role.OPERATOR)).status_code == 200
    # An operator of au: the us cycles are out of reach; so is a us cycle under au's URL.
    assert client.get("/api/v1/us/billing/cycles", headers=bearer(Role.OPERATOR)).status_code == 404
    au_cycle = world.tenants["A"].cycle
    assert client.get(f"/api/v1/es/billing/cycles/{au_cycle}", headers=_admin()).status_code == 404
    assert client.get("/api/v1/au/billing/cycles/999999", headers=_admin()).status_code == 404
    unknown = client.post(
        "/api/v1/xx/billing/cycles", json={"first_day": "2026-10-01"}, headers=_admin()
    )
    assert unknown.status_code == 422
    assert _cycles(world) == before


def test_the_start_route_documents_every_answer(world: World) -> None:
    """Its own codes (the app adds 401/403/404/422 to every regional route): read from
    the route itself, not the whole app's OpenAPI document (schemathesis checks that)."""
    assert world.cycles is not None
    router = create_cycles_router(world.cycles, access=lambda key: lambda: None)
    (start,) = [
        r for r in router.routes if isinstance(r, APIRoute) and "POST" in (r.methods or set())
    ]
    assert start.status_code == 202
    assert set(start.responses) == {200, 202, 401, 403, 404, 413, 422, 503}


def _progress(world: World, first_day: date) -> tuple[int, int | None, str]:
    with world.pool.connection() as conn:
        row = conn.execute(
            "SELECT sites_done, sites_total, state FROM billing.cycles"
            " WHERE region = 'us' AND first_day = %s",
            (first_day,),
        ).fetchone()
    assert row is not None
    return int(row[0]), row[1], str(row[2])


def test_a_run_records_its_progress_as_it_goes_and_resumes_after_a_stop(
    world: World, client: TestClient, sites: Sites
) -> None:
    """September 2026: both sites are skipped (their contracts start later). The service
    asks ``stop`` before each site: what the cycle row said then is the progress the
    screens poll. Stopped before the second site, the cycle stays running with 1 of 2
    done; run again, it retries both (skipped sites are not done) and finishes."""
    september = date(2026, 9, 1)
    service = create_billing_service(world.pool, progress_interval_s=0)
    seen: list[tuple[int, int | None, str]] = []

    def stop_before_the_second_site() -> bool:
        seen.append(_progress(world, september))
        return len(seen) == 2

    first = service.run_cycle(Region.US, september, run_by="test", stop=stop_before_the_second_site)
    assert first.state == "interrupted"
    assert seen == [(0, 2, "running"), (1, 2, "running")]
    assert _progress(world, september) == (1, 2, "running")

    second = service.run_cycle(Region.US, september, run_by="test")
    assert (second.state, second.numbers) == ("billed", ())
    assert _progress(world, september) == (2, 2, "billed")
    cycle = client.get(f"/api/v1/us/billing/cycles/{first.cycle_id}", headers=_admin()).json()
    # Three entries stored (one site skipped twice), each site shown once.
    assert cycle["skipped"] == 2
    assert sorted(s["site_id"] for s in cycle["skipped_sites"]) == sorted(
        [sites.metered.site_id, sites.silent]
    )
    assert all("after the period" in s["reason"] for s in cycle["skipped_sites"])


def test_the_screens_start_a_cycle_and_follow_it(world: World, sites: Sites) -> None:
    with page_client(world, Role.OPERATOR) as operator:
        listing = operator.get("/ui/us/billing/cycles")
        # An au operator: another region's screen is not there for them.
        assert listing.status_code == 404
        own = operator.get("/ui/au/billing/cycles")
        assert own.status_code == 200
        assert 'id="start-cycle"' not in own.text
        refused = operator.post(
            "/ui/au/billing/cycles", data=form_fields(operator, month="2026-06")
        )
        assert refused.status_code == 403
    before = _cycles(world)
    with page_client(world, Role.ADMIN) as admin:
        listing = admin.get("/ui/us/billing/cycles")
        assert listing.status_code == 200
        assert 'id="start-cycle"' in listing.text
        forged = admin.post("/ui/us/billing/cycles", data={"month": "2026-06"})
        assert forged.status_code == 403
        for month, cycle, said in (
            ("2026-13", "monthly", "give a month as YYYY-MM"),
            ("2026-08", "quarterly", "a quarter starts in January"),
            (datetime.now(UTC).strftime("%Y-%m"), "monthly", "has not ended in every time zone"),
        ):
            bad = admin.post(
                "/ui/us/billing/cycles", data=form_fields(admin, month=month, cycle=cycle)
            )
            assert bad.status_code == 422, month
            assert said in bad.text
        assert _cycles(world) == before

        started = admin.post(
            "/ui/us/billing/cycles",
            data=form_fields(admin, month="2026-06", cycle="monthly"),
            follow_redirects=False,
        )
        assert started.status_code == 303
        page_url = started.headers["location"]
        assert page_url.startswith("/ui/us/billing/cycles/")
        cycle_id = int(page_url.rsplit("/", 1)[1])
        progress_url = f"{page_url}/progress"

        def billed() -> bool:
            return 'data-state="billed"' in admin.get(progress_url).text

        until_sync(billed, CYCLE_WAIT_S, "the June cycle billed")
        # The page that showed it running reloads once it is billed (its documents).
        assert admin.get(progress_url, params={"shown": "running"}).headers["hx-refresh"] == "true"
        assert "hx-refresh" not in admin.get(progress_url, params={"shown": "billed"}).headers
        page = admin.get(page_url)
        assert 'data-done="2" data-total="2"' in page.text
        assert page.text.count("after the period") == 2
        assert 'id="no-documents"' in page.text
        # Started again from the form: the same cycle, no second one.
        again = admin.post(
            "/ui/us/billing/cycles",
            data=form_fields(admin, month="2026-06", cycle="monthly"),
            follow_redirects=False,
        )
        assert (again.status_code, again.headers["location"]) == (303, page_url)
        assert _cycles(world) == before + 1
        admin.cookies.set("potr_lang", "es")
        spanish = admin.get("/ui/us/billing/cycles")
        assert "Ciclos de facturación en US" in spanish.text
        assert f'data-cycle="{cycle_id}"' in spanish.text


def test_a_running_cycle_s_progress_part_polls(world: World) -> None:
    """A cycle whose run has done 2 of its 5 sites (as a run records it)."""
    with world.pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO billing.cycles (region, first_day, last_day, run_by, sites_total,"
            " sites_done, progress_at) VALUES ('us', '2025-01-01', '2025-01-31', 'test', 5,"
            " 2, now()) RETURNING id"
        ).fetchone()
    assert row is not None
    with page_client(world, Role.OPERATOR) as operator:
        # The operator is of au: the us cycle is out of reach.
        assert operator.get(f"/ui/us/billing/cycles/{row[0]}/progress").status_code == 404
    with page_client(world, Role.ADMIN) as admin:
        part = admin.get(f"/ui/us/billing/cycles/{row[0]}/progress")
        assert part.status_code == 200
        assert "hx-refresh" not in part.headers
        assert f'hx-get="/ui/us/billing/cycles/{row[0]}/progress?shown=running"' in part.text
        assert 'data-done="2" data-total="5"' in part.text
        assert "2 of 5 sites done" in part.text
        page = admin.get(f"/ui/us/billing/cycles/{row[0]}")
        assert 'hx-trigger="every' in page.text
