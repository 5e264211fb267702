"""The operator's alarm board of a region, an alarm's page with its history, and the
operator's three actions as CSRF-checked forms: acknowledge, shelve (for a duration
the store's policy allows, saying why), unshelve.

Everything is read and changed through :class:`cloud.alerts.AlarmStore` with the
viewer's scope, so an alarm outside it is not found (404). The store's refusals become
pages: an action the alarm's state does not allow is a 409, a shelf beyond the policy
(or without a reason) a 422 that names the limit.

The board lists open alarms by severity (urgent first), then by age (the longest
waiting first: a stale alarm stays in sight), with the day's flood figures of the
region's queue; it refreshes itself like the fleet board. Shelving is on the alarm's
page only: a reason being typed would be lost to the board's refresh.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_alarm_pages`` and FastAPI resolves string annotations in the module's globals.

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud.alerts import (
    Alarm,
    AlarmNotFound,
    AlarmStatus,
    AlarmStore,
    IllegalTransition,
    Severity,
    ShelveRefused,
)
from cloud.alerts.alarms import ANNUNCIATED_STATES, MAX_SHELVE_REASON, OPEN_STATES
from cloud.portal.authz import ALARM_OPERATORS
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from cloud.portal.web.site_data import SiteData
from contracts.timeutil import utc_now

__all__ = ["SEVERITY_ORDER", "SHELVE_CHOICES_MIN", "board_order", "create_alarm_pages"]

AlarmId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: The board's filter: what operators see (default), every open alarm, or one state.
StateFilter = Literal[
    "annunciated",
    "open",
    "unacknowledged",
    "acknowledged",
    "rtn_unacknowledged",
    "shelved",
    "suppressed",
    "out_of_service",
]
#: Shelf durations offered (minutes); the form shows those the severity's maximum allows.
SHELVE_CHOICES_MIN = (15, 60, 240, 480, 1440, 4320)
#: Urgent first.
SEVERITY_ORDER = (Severity.URGENT, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
_BOARD_LIMIT = 500
_HISTORY_LIMIT = 200


def board_order(alarms: list[Alarm]) -> list[Alarm]:
    """By severity (urgent first), then the longest waiting first."""
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return sorted(alarms, key=lambda a: (rank[a.severity], a.first_raised_at, a.id))


def _states(state: StateFilter) -> frozenset[AlarmStatus]:
    if state == "annunciated":
        return ANNUNCIATED_STATES
    if state == "open":
        return OPEN_STATES
    return frozenset({AlarmStatus(state)})


def create_alarm_pages(
    sessions: Sessions,
    renderer: Renderer,
    data: SiteData,
    store: AlarmStore,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    def shelve_choices(alarm: Alarm) -> list[int]:
        longest = store.policy.max_shelve.get(alarm.severity)
        if longest is None:
            return []
        return [m for m in SHELVE_CHOICES_MIN if timedelta(minutes=m) <= longest]

    @router.get("/alarms", operation_id="ui.alarms")
    async def board(
        request: Request,
        who: Annotated[Viewer, viewer("ui.alarms")],
        state: Annotated[StateFilter, Query()] = "annunciated",
    ) -> Response:
        def gather() -> dict[str, Any]:
            page = store.list_alarms(who.scope, who.region, _states(state), limit=_BOARD_LIMIT)
            return {
                "alarms": board_order(page.items),
                "truncated": page.next_cursor is not None,
                "flood": store.flood_metrics(who.region, scope=who.scope),
                "sites": {s.id: s for s in data.sites(who.scope)},
            }

        found = await run_in_threadpool(gather)
        query = f"?state={state}" if state != "annunciated" else ""
        return renderer.page(
            request, "alarms.html", language=who.language, viewer=who, state=state,
            board_url=f"/ui/{who.region.value}/alarms{query}", severities=SEVERITY_ORDER,
            may_act=who.role in ALARM_OPERATORS, **found,
        )  # fmt: skip

    async def alarm_page(
        request: Request, who: Viewer, alarm_id: int, refusal: str | None, status_code: int
    ) -> Response:
        def gather() -> dict[str, Any]:
            alarm = store.get(alarm_id, who.scope)
            history = store.history(alarm_id, who.scope)[-_HISTORY_LIMIT:]
            site = data.site(who.scope, alarm.site_id)
            return {"alarm": alarm, "history": list(reversed(history)), "site": site}

        try:
            found = await run_in_threadpool(gather)
        except AlarmNotFound:
            raise PageRefused(404, "no such alarm") from None
        site = found["site"]
        fmt = who.formats.at(site.time_zone) if site is not None else who.formats
        return renderer.page(
            request, "alarm.html", language=who.language, viewer=who, fmt=fmt,
            may_act=who.role in ALARM_OPERATORS, shelve_choices=shelve_choices(found["alarm"]),
            max_reason=MAX_SHELVE_REASON, refusal=refusal, status_code=status_code, **found,
        )  # fmt: skip

    @router.get("/alarms/{alarm_id}", operation_id="ui.alarm")
    async def alarm(
        request: Request, alarm_id: AlarmId, who: Annotated[Viewer, viewer("ui.alarm")]
    ) -> Response:
        return await alarm_page(request, who, alarm_id, None, 200)

    async def act(
        request: Request,
        who: Viewer,
        alarm_id: int,
        back: str,
        change: Callable[[], Alarm],
    ) -> Response:
        _ = renderer.gettext(who.language)
        try:
            await run_in_threadpool(change)
        except AlarmNotFound:
            raise PageRefused(404, "no such alarm") from None
        except ShelveRefused as exc:
            return await alarm_page(request, who, alarm_id, _shelf_refusal(_, exc, store), 422)
        except IllegalTransition as exc:
            why = _(
                "This alarm cannot be %(action)s now: it is %(state)s. The page shows it as it is.",
                action=_action_words(_, exc.action.value),
                state=_state_words(_, exc.state.value),
            )
            return await alarm_page(request, who, alarm_id, why, 409)
        # Post/redirect/get: a reload does not act twice.
        base = f"/ui/{who.region.value}/alarms"
        return RedirectResponse(base if back == "board" else f"{base}/{alarm_id}", status_code=303)

    Back = Annotated[Literal["board", "alarm"], Form()]

    @router.post(
        "/alarms/{alarm_id}/acknowledge",
        operation_id="ui.alarm.acknowledge",
        dependencies=[Depends(check_csrf)],
    )
    async def acknowledge(
        request: Request,
        alarm_id: AlarmId,
        who: Annotated[Viewer, viewer("ui.alarm.acknowledge")],
        back: Back = "alarm",
    ) -> Response:
        return await act(
            request, who, alarm_id, back,
            lambda: store.acknowledge(alarm_id, who.caller.subject, who.scope),
        )  # fmt: skip

    @router.post(
        "/alarms/{alarm_id}/shelve",
        operation_id="ui.alarm.shelve",
        dependencies=[Depends(check_csrf)],
    )
    async def shelve(
        request: Request,
        alarm_id: AlarmId,
        who: Annotated[Viewer, viewer("ui.alarm.shelve")],
        minutes: Annotated[int, Form(ge=1, le=60 * 24 * 30)],
        reason: Annotated[str, Form(max_length=MAX_SHELVE_REASON)],
        back: Back = "alarm",
    ) -> Response:
        until = clock() + timedelta(minutes=minutes)
        return await act(
            request, who, alarm_id, back,
            lambda: store.shelve(alarm_id, until, who.caller.subject, reason, who.scope),
        )  # fmt: skip

    @router.post(
        "/alarms/{alarm_id}/unshelve",
        operation_id="ui.alarm.unshelve",
        dependencies=[Depends(check_csrf)],
    )
    async def unshelve(
        request: Request,
        alarm_id: AlarmId,
        who: Annotated[Viewer, viewer("ui.alarm.unshelve")],
        back: Back = "alarm",
    ) -> Response:
        return await act(
            request, who, alarm_id, back,
            lambda: store.unshelve(alarm_id, who.caller.subject, who.scope),
        )  # fmt: skip

    return router


def _hours(_: Callable[..., str], span: timedelta) -> str:
    hours = span / timedelta(hours=1)
    return _("%(n)s h", n=f"{hours:g}")


def _shelf_refusal(_: Callable[..., str], exc: ShelveRefused, store: AlarmStore) -> str:
    """Why a shelf was refused, naming the limit, in the person's words."""
    if exc.field == "reason":
        return _("Say why the alarm is shelved (1 to %(n)s characters).", n=MAX_SHELVE_REASON)
    if exc.field == "severity":
        return _("Urgent alarms cannot be shelved.")
    for severity, span in store.policy.max_shelve.items():
        if f"beyond the {severity.value} maximum" in str(exc):
            return _(
                "A %(severity)s alarm can be shelved for at most %(limit)s.",
                severity=_severity_words(_, severity.value),
                limit=_hours(_, span),
            )
    return _("The shelf must end in the future.")


def _severity_words(_: Callable[..., str], severity: str) -> str:
    words = {"urgent": _("urgent"), "high": _("high"), "medium": _("medium"), "low": _("low")}
    return words.get(severity, severity)


def _action_words(_: Callable[..., str], action: str) -> str:
    words = {
        "acknowledge": _("acknowledged"),
        "shelve": _("shelved"),
        "unshelve": _("unshelved"),
    }
    return words.get(action, action)


def _state_words(_: Callable[..., str], state: str) -> str:
    words = {
        "normal": _("closed"),
        "unacknowledged": _("unacknowledged"),
        "acknowledged": _("acknowledged"),
        "rtn_unacknowledged": _("back to normal, unacknowledged"),
        "shelved": _("shelved"),
        "suppressed": _("suppressed by design"),
        "out_of_service": _("out of service"),
    }
    return words.get(state, state)
