"""The dispatch screens' pure parts: a MOSIE's route for today judged in each site's own
zone, and which checklist tasks a screen offers to tick (the safety pre-start in order,
then any task of the work)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.dispatch.checklists import load_checklists
from cloud.dispatch.models import WorkOrder
from cloud.portal.web.pages_dispatch import route, tickable
from contracts.topics import Region

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
#: In December Sydney is UTC+11, Madrid UTC+1.
ZONES = {1: "Australia/Sydney", 2: "Europe/Madrid"}


def _job(job_id: int, site_id: int, arrive_by: datetime | None) -> WorkOrder:
    return WorkOrder(
        id=job_id, region=Region.AU, site_id=site_id, account_id=None, type="inspection",
        priority="P3", title="a job", description="", status="accepted", assignee="E1",
        visits=0, reopen_count=0, verified_at=None, sla_breached=frozenset(), alarm_id=None,
        created_by="t", created_at=NOW, updated_at=NOW, arrive_by=arrive_by,
        resolve_by=None, version=1,
    )  # fmt: skip


def test_todays_route_is_judged_in_each_sites_own_zone() -> None:
    jobs = [
        _job(1, 1, NOW - timedelta(days=1)),  # overdue: still on today's route
        _job(2, 1, datetime(2026, 12, 5, 13, 30, tzinfo=UTC)),  # 00:30 on the 6th in Sydney
        _job(3, 2, datetime(2026, 12, 5, 22, 30, tzinfo=UTC)),  # 23:30 on the 5th in Madrid
        _job(4, 2, None),  # no due time
    ]
    assert [j.id for j in route(jobs, ZONES, NOW)] == [1, 3, 4]


def test_the_safety_pre_start_is_offered_in_order_then_any_task_of_the_work() -> None:
    tasks = load_checklists()["isolator_fault"].tasks
    safety = [t.id for t in tasks if t.safety]
    work = {t.id for t in tasks if not t.safety}
    assert tickable(tasks, set()) == {safety[0]}
    assert tickable(tasks, set(safety[:2])) == {safety[2]}
    assert tickable(tasks, set(safety)) == work
    assert tickable(tasks, {t.id for t in tasks}) == frozenset()
