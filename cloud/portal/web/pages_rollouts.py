"""Staged rollouts in the operators' screens (issue 18): operators and admins.

``/ui/{region}/rollouts`` lists the region's rollouts, newest first, with their state
and — for the active ones — their progress; ``/ui/{region}/rollouts/{id}`` shows one:
per wave its size, how many gateways it reached, applied and failed, and its failure
rate against the threshold; per gateway its outcome; the log (who did what, why, and
what came of it); and the pause / resume / abort / roll-back forms the state allows,
each with a reason. Everything goes through the config service's published rollout
API (``ConfigService.rollouts``) with the URL's region: another region's rollout is
not found.

**Once per form.** The rollout service takes no idempotency key, so each action form
carries one made when the page was rendered and :class:`cloud.portal.FormKeys` runs the
action once per (person, key): a double click or a replayed form lands on the rollout
page without a second action. The service's refusals (the state does not allow it) are
the rollout's page with the reason (409), never a 500.

**Live.** ``/ui/{region}/rollouts/{id}/events`` streams the progress part of the page
through the dispatch board's server-sent-events helper (:class:`BoardFeed`: render,
compare digests, send when changed). Rollouts send no ``pg_notify`` (the config
service's internals are not the portal's to change), so the stream re-renders on its
timer alone, every ``live_interval_s``: one rollout read per open page per interval,
and what changes arrives within one interval. The forms stay outside the live part (a
fresh idempotency key per render would change every digest); when the state changes
under an open page, the live part says so and the page's reload offers the new forms.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_rollout_pages`` and FastAPI resolves string annotations in the module's globals.

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Header, Path, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cloud.config import ConfigService, ConflictError, NotFoundError, RefusedError
from cloud.config.rollout_models import RolloutGatewayView, RolloutView, WaveView
from cloud.config.rollouts import TRANSITIONS
from cloud.portal.form_keys import FormKeyReused, FormKeys
from cloud.portal.web.board_feed import BoardFeed, digest_of
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.pages_dispatch import new_form_key
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer

__all__ = ["ACTIONS", "WaveRow", "create_rollout_pages", "gateway_rows", "wave_rows"]

RolloutId = Annotated[int, Path(ge=1, le=2**63 - 1)]
FormKey = Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{8,90}$")]
Digest = Annotated[str | None, Header(max_length=64, pattern=r"^[0-9a-f]{1,64}$")]
StateName = Literal["", "running", "paused", "aborted", "completed", "rolled_back"]
RolloutAction = Literal["pause", "resume", "abort", "rollback"]
#: The forms in the order a page offers them.
ACTIONS: tuple[RolloutAction, ...] = ("pause", "resume", "abort", "rollback")
MAX_REASON = 1000
#: Rollouts one list shows; gateways one rollout page lists (the rest are counted).
_LISTED = 50
_SHOWN_GATEWAYS = 200
_ACTIVE = frozenset({"running", "paused"})
_REACHED = frozenset({"pending", "applied", "failed", "timed_out", "superseded"})
#: Outcomes an operator looks for first: listed before the others.
_FIRST = {"failed": 0, "timed_out": 0, "skipped": 1, "deferred": 1, "superseded": 1}


class WaveRow:
    """One wave as the page shows it (counts from the service's view)."""

    def __init__(self, wave: WaveView, threshold: float, current: int, accepted: int) -> None:
        self.number = wave.wave + 1
        self.size = wave.size
        self.reached = sum(n for s, n in wave.counts.items() if s in _REACHED)
        self.applied = wave.counts.get("applied", 0)
        self.failed = wave.failed
        self.counted = wave.counted
        self.rate = wave.failed / wave.counted if wave.counted else None
        self.over = self.rate is not None and self.rate > threshold
        self.started = wave.wave <= current
        #: Failures an operator's resume accepted: not judged again.
        self.accepted = wave.wave <= accepted


def wave_rows(view: RolloutView) -> list[WaveRow]:
    return [
        WaveRow(w, view.failure_threshold, view.current_wave, view.accepted_through)
        for w in view.waves
    ]


def gateway_rows(view: RolloutView, most: int = _SHOWN_GATEWAYS) -> list[RolloutGatewayView]:
    """At most ``most`` gateways: failures first, then skipped and deferred ones, then
    the rest, each group in wave order."""
    ranked = sorted(
        view.gateway_steps, key=lambda g: (_FIRST.get(g.status, 2), g.wave, g.gateway_id)
    )
    return ranked[:most]


def allowed(state: str) -> list[str]:
    """The actions the rollout's state machine allows now, in the page's order."""
    return [a for a in ACTIONS if (state, a) in TRANSITIONS]


def create_rollout_pages(
    sessions: Sessions,
    renderer: Renderer,
    config: ConfigService,
    keys: FormKeys | None,
    feed: BoardFeed,
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)
    rollouts = config.rollouts

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    def load(who: Viewer, rollout_id: int) -> RolloutView:
        try:
            return rollouts.get(rollout_id, region=who.region.value)
        except NotFoundError:
            raise PageRefused(404, "no such rollout in the region") from None

    def render_progress(who: Viewer, view: RolloutView, shown_state: str) -> str:
        env = renderer.environment(who.language)
        context = {
            "viewer": who, "fmt": who.formats, "r": view, "waves": wave_rows(view),
            "gateways": gateway_rows(view), "shown_state": shown_state,
        }  # fmt: skip
        return env.get_template("_rollout_progress.html").render(context)

    @router.get("/rollouts", operation_id="ui.rollouts")
    async def listing(request: Request, who: Annotated[Viewer, viewer("ui.rollouts")]) -> Response:
        region = who.region.value

        def gather() -> dict[str, Any]:
            summaries = rollouts.list(region=region, limit=_LISTED)
            # Progress of the active ones only: a finished rollout's state says enough,
            # and each view reads every gateway of its rollout.
            progress = {}
            for s in summaries:
                if s.state in _ACTIVE:
                    view = rollouts.get(s.id, region=region, log_limit=1)
                    applied = sum(1 for g in view.gateway_steps if g.status == "applied")
                    failed = sum(w.failed for w in view.waves)
                    progress[s.id] = (applied, failed, len(view.waves))
            return {"rollouts": summaries, "progress": progress}

        found = await run_in_threadpool(gather)
        return renderer.page(request, "rollouts.html", language=who.language, viewer=who, **found)

    async def rollout_page(
        request: Request, who: Viewer, rollout_id: int, refusal: str | None, status_code: int
    ) -> Response:
        view = await run_in_threadpool(load, who, rollout_id)
        html = render_progress(who, view, view.state)
        return renderer.page(
            request, "rollout.html", language=who.language, viewer=who, r=view,
            progress_html=html, digest=digest_of(html), actions=allowed(view.state),
            new_key=new_form_key, max_reason=MAX_REASON, refusal=refusal,
            status_code=status_code,
        )  # fmt: skip

    @router.get("/rollouts/{rollout_id}", operation_id="ui.rollout")
    async def rollout(
        request: Request, rollout_id: RolloutId, who: Annotated[Viewer, viewer("ui.rollout")]
    ) -> Response:
        return await rollout_page(request, who, rollout_id, None, 200)

    @router.get("/rollouts/{rollout_id}/events", operation_id="ui.rollout.events")
    async def events(
        request: Request,
        rollout_id: RolloutId,
        who: Annotated[Viewer, viewer("ui.rollout.events")],
        state: StateName = "",
        digest: Annotated[str | None, Query(max_length=64, pattern=r"^[0-9a-f]{1,64}$")] = None,
        last_event_id: Digest = None,
    ) -> Response:
        await run_in_threadpool(load, who, rollout_id)  # 404 before the stream starts

        def render() -> str:
            return render_progress(who, load(who, rollout_id), state)

        async def gone() -> bool:
            return await request.is_disconnected()

        return StreamingResponse(
            feed.stream(who.region.value, last_event_id or digest, render, gone),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @router.post(
        "/rollouts/{rollout_id}/act",
        operation_id="ui.rollout.act",
        dependencies=[Depends(check_csrf)],
    )
    async def act(
        request: Request,
        rollout_id: RolloutId,
        who: Annotated[Viewer, viewer("ui.rollout.act")],
        action: Annotated[RolloutAction, Form()],
        key: FormKey,
        reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    ) -> Response:
        if keys is None:
            raise PageRefused(503, "form keys are not kept here")
        _ = renderer.gettext(who.language)
        why = reason.strip()
        if not why:
            return await rollout_page(
                request, who, rollout_id, _("Not done: %(reason)s", reason=_("Say why.")), 422
            )
        subject = who.caller.subject
        region = who.region.value

        def work() -> RolloutView:
            return rollouts.act(rollout_id, action, why, subject, region=region)

        try:
            await run_in_threadpool(keys.once, subject, key, f"rollout {rollout_id} {action}", work)
        except NotFoundError:
            raise PageRefused(404, "no such rollout in the region") from None
        except (ConflictError, RefusedError, FormKeyReused) as exc:
            text = _("Not done: %(reason)s", reason=_refusal(_, action, exc))
            status = 422 if isinstance(exc, RefusedError) else 409
            return await rollout_page(request, who, rollout_id, text, status)
        # Post/redirect/get: a reload does not post again.
        return RedirectResponse(f"/ui/{region}/rollouts/{rollout_id}", status_code=303)

    return router


def _refusal(_: Callable[..., str], action: str, exc: Exception) -> str:
    """A refusal in the reader's language where its kind is known; the service's English
    reason beside it (it names the state and what is allowed)."""
    if isinstance(exc, FormKeyReused):
        return _("This form was already used for another action. Reload the page.")
    if isinstance(exc, ConflictError):
        return _("the rollout's state does not allow this (%(detail)s)", detail=str(exc))
    return str(exc)
