"""The pure rules a technician's configuration request is judged by (the cases the end
to end test does not reach: clocks at the edges, a disabled user, registration data,
production and unverified values, which of several open jobs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cloud.config.tech_rules import Accepted, JobFact, Refusal, TechnicianFact, judge
from contracts.messages import ConfigReq
from contracts.topics import parse_tech_topic
from device_profiles import builtin_grid_code

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
TOPIC = parse_tech_topic("potr/v1/au/_tech/alice/config_req")
ALICE = TechnicianFact("_tech/alice", "MO-100", "au")
ON_SITE = JobFact(7, "au", "on_site", ("gw-1",))


def _request(profile: str = "au-a-2020", ts: datetime = NOW) -> ConfigReq:
    return ConfigReq(
        id=uuid.uuid4(), employee_no="MO-100", site_id=3, profile=profile, ts=ts, nonce="n" * 20
    )


def _judge(request: ConfigReq | None = None, **kw: object) -> Accepted | Refusal:
    args: dict[str, object] = {
        "replayed": False,
        "now": NOW,
        "technician": ALICE,
        "jobs": [ON_SITE],
        "profile": builtin_grid_code((request or _request()).profile),
    }
    return judge(request or _request(), TOPIC, **(args | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (timedelta(minutes=-5), None),  # exactly the maximum age: still accepted
        (timedelta(minutes=-5, seconds=-1), "stale"),
        (timedelta(seconds=30), None),
        (timedelta(seconds=31), "stale"),
    ],
)
def test_a_request_must_be_recent(offset: timedelta, code: str | None) -> None:
    verdict = _judge(_request(ts=NOW + offset))
    assert (verdict.code if isinstance(verdict, Refusal) else None) == code


def test_a_disabled_or_unknown_technician_is_refused() -> None:
    disabled = TechnicianFact("_tech/alice", "MO-100", "au", disabled=True)
    assert _judge(technician=disabled) == Refusal(
        "unknown_technician", "_tech/alice is no enabled technician"
    )
    assert isinstance(_judge(technician=None), Refusal)


def test_a_technician_of_another_region_is_refused_even_with_a_job_here() -> None:
    verdict = _judge(technician=TechnicianFact("_tech/alice", "MO-100", "us"))
    assert isinstance(verdict, Refusal)
    assert verdict.code == "other_region"


def test_registration_data_is_never_pushed() -> None:
    es = parse_tech_topic("potr/v1/es/_tech/alice/config_req")
    request = _request("es-en50549-1-sin-excedentes")
    verdict = judge(
        request,
        es,
        replayed=False,
        now=NOW,
        technician=TechnicianFact("_tech/alice", "MO-100", "es"),
        jobs=[JobFact(7, "es", "on_site", ())],
        profile=builtin_grid_code(request.profile),
    )
    assert isinstance(verdict, Refusal)
    assert verdict.code == "refused"


def test_production_refuses_a_profile_with_unverified_values() -> None:
    verdict = _judge(production=True)  # au-a-2020 holds unverified values
    assert isinstance(verdict, Refusal)
    assert "unverified" in verdict.reason


def test_the_job_on_site_is_the_one_named() -> None:
    jobs = [JobFact(3, "au", "accepted", ()), JobFact(9, "au", "on_site", ()), ON_SITE]
    assert _judge(jobs=jobs) == Accepted(ON_SITE)
    assert _judge(jobs=[JobFact(5, "au", "en_route", ())]) == Accepted(
        JobFact(5, "au", "en_route", ())
    )
