"""Whether a field technician's configuration request is accepted: pure rules, no I/O.

A request (:class:`~contracts.messages.ConfigReq`) arrives on the technician's own topic
(``potr/v1/<region>/_tech/<name>/config_req``), which the broker lets only the broker
identity ``_tech/<name>`` publish on; so the topic *is* the sender. It is accepted only
when every rule below holds, checked in this order (the first that fails is the answer):

1. ``replayed`` — its request id or nonce was seen before;
2. ``stale`` — its ``ts`` is older than the maximum age, or too far in the future;
3. ``unknown_technician`` — no enabled user has the topic's broker identity;
4. ``identity_mismatch`` — the request names another employee than that identity's;
5. ``other_region`` — the topic's region is not the technician's home region;
6. ``no_open_job`` / ``other_region`` — no work order of the site, assigned to that
   employee, is open (:data:`OPEN_STATES`); one is, but in another region;
7. ``unknown_profile`` / ``profile_region`` / ``refused`` — the grid-code profile is not
   known, belongs to another region, is registration data (never pushed), or holds an
   unverified value in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from contracts.messages import ConfigReq, TechOutcome
from contracts.topics import Region
from device_profiles import GridCodeProfile

__all__ = [
    "MAX_AGE",
    "MAX_SKEW",
    "OPEN_STATES",
    "REQUEST_LOG_KEPT",
    "Accepted",
    "JobFact",
    "Origin",
    "Refusal",
    "TechnicianFact",
    "judge",
]

#: A technician may push for a job they accepted, are travelling to or are working on
#: (dispatch's "on a job"); not one merely offered (``assigned``), nor one they left
#: (on hold, cannot complete), resolved or closed.
OPEN_STATES: frozenset[str] = frozenset({"accepted", "en_route", "on_site"})
#: A request older than this is refused (and its id and nonce may then be forgotten).
MAX_AGE = timedelta(minutes=5)
#: How far in the future a request's ``ts`` may lie (the phone's clock).
MAX_SKEW = timedelta(seconds=30)
#: How long the log of requests keeps one (refusals have no audit row elsewhere). Far
#: beyond MAX_AGE: a forgotten request is refused as stale, so forgetting never lets one
#: be replayed.
REQUEST_LOG_KEPT = timedelta(days=90)


class Origin(Protocol):
    """Who sent the request, as the channel vouches: the technician topic the broker let
    only ``_tech/<name>`` publish on (:class:`~contracts.topics.TechTopic`), or the
    portal's signed-in session (``portal/<user id>``), and the region it came to."""

    @property
    def username(self) -> str: ...
    @property
    def region(self) -> Region: ...


@dataclass(frozen=True, slots=True)
class TechnicianFact:
    """A user with a broker identity, as the identity service's events said."""

    broker_username: str
    employee_no: str | None
    home_region: str
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class JobFact:
    """A work order of the request's site assigned to the request's employee."""

    work_order_id: int
    region: str | None
    status: str
    gateway_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    code: TechOutcome
    reason: str


@dataclass(frozen=True, slots=True)
class Accepted:
    job: JobFact


def judge(
    request: ConfigReq,
    topic: Origin,
    *,
    replayed: bool,
    now: datetime,
    technician: TechnicianFact | None,
    jobs: Sequence[JobFact],
    profile: GridCodeProfile | None,
    production: bool = False,
) -> Accepted | Refusal:
    """The verdict on ``request`` received on ``topic`` at ``now`` (see the module)."""
    if replayed:
        return Refusal("replayed", f"request {request.id} or its nonce was seen before")
    if request.ts < now - MAX_AGE or request.ts > now + MAX_SKEW:
        return Refusal(
            "stale",
            f"request time {request.ts.isoformat()} is not within {MAX_AGE} before or "
            f"{MAX_SKEW} after the service's clock",
        )
    if technician is None or technician.disabled:
        return Refusal("unknown_technician", f"{topic.username} is no enabled technician")
    if technician.employee_no != request.employee_no:
        return Refusal(
            "identity_mismatch",
            f"{topic.username} may not speak for employee {request.employee_no}",
        )
    if technician.home_region != topic.region.value:
        return Refusal(
            "other_region",
            f"{topic.username} works in region {technician.home_region!r}, "
            f"not {topic.region.value!r}",
        )
    open_jobs = [j for j in jobs if j.status in OPEN_STATES]
    here = [j for j in open_jobs if j.region == topic.region.value]
    if not here:
        if open_jobs:
            return Refusal(
                "other_region",
                f"the open work order {open_jobs[0].work_order_id} of site {request.site_id} "
                f"is in region {open_jobs[0].region!r}, not {topic.region.value!r}",
            )
        return Refusal(
            "no_open_job",
            f"employee {request.employee_no} has no accepted, en route or on-site work order "
            f"at site {request.site_id}",
        )
    if profile is None:
        return Refusal("unknown_profile", f"no grid-code profile {request.profile!r}")
    if str(profile.region) != topic.region.value:
        return Refusal(
            "profile_region",
            f"profile {profile.id} is for region {str(profile.region)!r}, "
            f"not {topic.region.value!r}",
        )
    if profile.registration_only:
        return Refusal(
            "refused",
            f"{profile.id} carries registration data (an anti-export device): assigned by "
            "re-registration, never pushed",
        )
    if production and profile.unverified:
        return Refusal(
            "refused",
            f"{profile.id} holds unverified values ({', '.join(profile.unverified_keys[:5])}); "
            "production pushes only verified profiles",
        )
    # The job first reached (on site before en route before accepted), then the oldest.
    rank = {"on_site": 0, "en_route": 1, "accepted": 2}
    return Accepted(min(here, key=lambda j: (rank[j.status], j.work_order_id)))
