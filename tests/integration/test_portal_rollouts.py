"""Grid-code profiles and staged rollouts in the operators' screens (issue 18), over
``api_world`` (accounts A and B in au, E in es): the pages render from the shipped
profiles and the config service's rollouts, unverified values are marked in words, an
action form applies once per form key, the state machine's refusals are pages, other
roles and regions are refused, and the progress follows a change live over a real
uvicorn. Expected values are copied from ``grid-codes.md`` §1 (AS/NZS 4777.2:2020
volt-var, regions A and B) or counted from what each test does.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from cloud.config import ConfigService
from cloud.config.rollout_models import RolloutIn, RolloutTarget
from cloud.identity import Role
from cloud.portal import FormKeys
from contracts.topics import Region
from tests.api_tokens import mint_token
from tests.browser.live import serve_asgi
from tests.integration.api_world import (
    Tenant,
    World,
    page_client,
    private_world,
    profile,
)
from tests.integration.sse_frames import frames_of

pytestmark = pytest.mark.integration

_KEY = re.compile(r'data-rollout-action="(\w+)".*?name="key" value="([A-Za-z0-9_-]+)"', re.S)
NBSP = "\u00a0"
#: Who each role's session is (the rollout log names them).
SUBJECTS = {role: f"usr_{uuid.uuid4().hex}" for role in Role}


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_world(postgres_server_url, tmp_path_factory.mktemp("ui-rollouts")) as built:
        yield built


def _config(world: World) -> ConfigService:
    assert world.config is not None
    return world.config


def _client(world: World, role: Role) -> TestClient:
    return page_client(world, role, subject=SUBJECTS[role])


def _fresh_rollout(world: World, t: Tenant, reason: str = "volt reference to 233 V") -> int:
    """A running rollout over ``t``'s gateway (one active rollout per gateway: earlier
    ones of the region are aborted first)."""
    rollouts = _config(world).rollouts
    for s in rollouts.list(region=t.region.value):
        if s.state in ("running", "paused"):
            rollouts.act(s.id, "abort", "test reset", "test", region=None)
    body = RolloutIn(
        profile=profile(t.region),
        settings={"sim-inverter-103": {"v_ref": 233}},
        target=RolloutTarget(gateways=[t.gateway]),
        reason=reason,
    )
    return rollouts.create(t.region.value, body, "seed").id


def _keys(html: str) -> dict[str, str]:
    """Action → the form key its form carries."""
    return dict(_KEY.findall(html))


def _log(world: World, rollout_id: int) -> list[tuple[str, str, str, str]]:
    """(actor, action, reason, outcome), oldest first."""
    view = _config(world).rollouts.get(rollout_id, region=None)
    return [(e.actor, e.action, e.reason, e.outcome) for e in reversed(view.log)]


def test_the_regions_grid_codes_with_their_unverified_values_marked(world: World) -> None:
    with _client(world, Role.OPERATOR) as client:
        listing = client.get("/ui/au/grid-codes")
        assert listing.status_code == 200
        listed = set(re.findall(r'data-profile="([a-z0-9.-]+)"', listing.text))
        assert {"au-a-2020", "au-b-2020", "au-c-2020", "au-c-2024"} <= listed
        assert not any(p.startswith(("es-", "ieee", "heco", "rule21")) for p in listed)
        card = re.search(r'data-profile="au-c-2024".*?</li>', listing.text, re.S)
        assert card is not None
        assert "UNVERIFIED:" in card.group(0)  # in words, not by colour alone
        assert "au-c-2020" in card.group(0)  # its parent

        page = client.get("/ui/au/grid-codes/au-a-2020")
        assert page.status_code == 200
        # AS/NZS 4777.2:2020 Australia A volt-var (grid-codes.md §1): 207/+44 … 258/-60.
        row = re.search(r'<tr data-key="volt_var.curve".*?</tr>', page.text, re.S)
        assert row is not None
        assert f"(207{NBSP}V; 44%VA)" in row.group(0)
        assert f"(258{NBSP}V; -60%VA)" in row.group(0)
        assert 'data-confidence="verified"' in row.group(0)
        assert "data-unverified" not in row.group(0)
        # The SEANZ ramp note is unverified: marked in words and a symbol.
        ramp = re.search(r'<tr data-key="enter_service.ramp_s".*?</tr>', page.text, re.S)
        assert ramp is not None
        assert 'data-confidence="unverified"' in ramp.group(0)
        assert "data-unverified" in ramp.group(0)
        assert "Unverified" in ramp.group(0)
        assert "SEANZ note" in ramp.group(0)
        assert 'id="unverified-summary"' in page.text

        # In Spanish, numbers and marks in the reader's language.
        client.cookies.set("potr_lang", "es")
        spanish = client.get("/ui/au/grid-codes/au-a-2020").text
        assert "No verificado" in spanish
        assert "Fuente · cláusula" in spanish
        client.cookies.delete("potr_lang")

        diff = client.get("/ui/au/grid-codes/diff?a=au-a-2020&b=au-b-2020")
        assert diff.status_code == 200
        keys = set(re.findall(r'<tr data-key="([a-z_.]+)"', diff.text))
        # A and B differ in volt-var (B: 205/+30 … 255/-40) and volt-watt; their trip
        # settings are the same.
        assert {"volt_var.curve", "volt_watt.curve"} <= keys
        assert "trip.hv" not in keys
        assert f"(255{NBSP}V; -40%VA)" in diff.text

        # Another region's profile, an unknown one, a malformed id: pages, never a 500.
        assert client.get("/ui/au/grid-codes/es-en50549-1").status_code == 404
        assert client.get("/ui/au/grid-codes/diff?a=au-a-2020&b=heco-a").status_code == 404
        assert client.get("/ui/au/grid-codes/nope").status_code == 404
        assert client.get("/ui/au/grid-codes/Bad%20Id").status_code == 422


def test_a_rollouts_page_shows_waves_gateways_and_its_log(world: World) -> None:
    a = world.tenants["A"]
    rollout_id = _fresh_rollout(world, a, reason="raise v_ref")
    with _client(world, Role.OPERATOR) as client:
        listing = client.get("/ui/au/rollouts")
        assert listing.status_code == 200
        row = re.search(
            rf'<tr data-rollout="{rollout_id}" data-state="running">.*?</tr>', listing.text, re.S
        )
        assert row is not None
        assert "wave 1 of 1" in row.group(0)
        assert "0 of 1 applied" in row.group(0)

        page = client.get(f"/ui/au/rollouts/{rollout_id}")
        assert page.status_code == 200
        wave = re.search(r'<tr data-wave="1">.*?</tr>', page.text, re.S)
        assert wave is not None
        # The canary of one gateway: pushed (reached), no answer yet.
        assert re.search(r"<td data-size>1</td>\s*<td data-reached>1</td>", wave.group(0))
        assert re.search(r"<td data-applied>0</td>\s*<td data-failed>0</td>", wave.group(0))
        assert f'data-gateway="{a.gateway}" data-status="pending"' in page.text
        assert 'data-log-action="rollout.create"' in page.text
        assert "raise v_ref" in page.text
        # Running: pause, abort and roll back are offered; resume is not.
        assert set(_keys(page.text)) == {"pause", "abort", "rollback"}


def test_an_action_applies_once_per_form_key_and_refusals_are_pages(world: World) -> None:
    b = world.tenants["B"]
    rollout_id = _fresh_rollout(world, b)
    url = f"/ui/au/rollouts/{rollout_id}/act"
    rollouts = _config(world).rollouts
    with _client(world, Role.OPERATOR) as client:
        keys = _keys(client.get(f"/ui/au/rollouts/{rollout_id}").text)
        csrf = client.cookies.get("potr_csrf")
        pause = {"csrf_token": csrf, "action": "pause", "key": keys["pause"], "reason": "storm"}
        first = client.post(url, data=pause, follow_redirects=False)
        again = client.post(url, data=pause, follow_redirects=False)
        assert (first.status_code, again.status_code) == (303, 303)
        assert first.headers["location"] == f"/ui/au/rollouts/{rollout_id}"
        assert rollouts.get(rollout_id, region="au").state == "paused"

        page = client.get(f"/ui/au/rollouts/{rollout_id}").text
        assert set(_keys(page)) == {"resume", "abort", "rollback"}
        resume = {"csrf_token": csrf, "action": "resume", "key": _keys(page)["resume"]}
        resumed = client.post(url, data=resume | {"reason": "storm over"}, follow_redirects=False)
        assert resumed.status_code == 303
        # The pause form sent once more (a browser's retry): nothing happens again.
        assert client.post(url, data=pause, follow_redirects=False).status_code == 303
        assert rollouts.get(rollout_id, region="au").state == "running"

        # What the state machine does not allow: the page with the reason, nothing done.
        fresh = uuid.uuid4().hex
        refused = client.post(url, data=resume | {"key": fresh, "reason": "again"})
        assert refused.status_code == 409
        assert 'id="refusal"' in refused.text
        assert "cannot resume" in refused.text
        # No reason: the page asks for one.
        bare = client.post(url, data=resume | {"key": uuid.uuid4().hex, "reason": "  "})
        assert bare.status_code == 422
        assert "Say why." in bare.text
        # A key reused for another action: refused, not taken as a replay.
        reused = client.post(url, data=pause | {"action": "abort"})
        assert reused.status_code == 409
        assert "already used" in reused.text
        # Malformed forms, an unknown rollout, another region's: pages, never a 500.
        assert client.post(url, data=pause | {"action": "explode"}).status_code == 422
        assert client.post(url, data=pause | {"key": "short"}).status_code == 422
        assert client.post("/ui/au/rollouts/999999/act", data=pause).status_code == 404
        far = _fresh_rollout(world, world.tenants["E"])
        far_url = f"/ui/au/rollouts/{far}/act"
        assert client.post(far_url, data=pause | {"key": uuid.uuid4().hex}).status_code == 404
        assert client.get(f"/ui/au/rollouts/{far}").status_code == 404
        # Without the CSRF token: refused before anything runs.
        assert client.post(url, data=pause | {"csrf_token": ""}).status_code == 403

    assert rollouts.get(far, region="es").state == "running"
    operator = SUBJECTS[Role.OPERATOR]
    assert _log(world, rollout_id) == [
        ("seed", "rollout.create", "volt reference to 233 V", "running"),
        (operator, "rollout.pause", "storm", "paused"),
        (operator, "rollout.resume", "storm over", "running"),
        (operator, "rollout.resume", "again", "refused"),
    ]


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.MOSIE, Role.CUSTOMER])
def test_other_roles_cannot_act_on_a_rollout(world: World, role: Role) -> None:
    a = world.tenants["A"]
    rollout_id = _fresh_rollout(world, a)
    with _client(world, role) as client:
        form = {
            "csrf_token": client.cookies.get("potr_csrf"),
            "action": "abort",
            "key": uuid.uuid4().hex,
            "reason": "not mine",
        }
        answer = client.post(f"/ui/au/rollouts/{rollout_id}/act", data=form)
        assert answer.status_code == 403
        assert client.get(f"/ui/au/rollouts/{rollout_id}/events").status_code == 403
    assert _config(world).rollouts.get(rollout_id, region="au").state == "running"


def test_a_refused_action_leaves_its_form_key_unused(world: World) -> None:
    keys = FormKeys(world.pool)
    key = uuid.uuid4().hex
    calls: list[int] = []

    def refuse() -> None:
        calls.append(1)
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        keys.once("someone", key, "rollout 1 pause", refuse)
    assert keys.once("someone", key, "rollout 1 pause", lambda: "done") == "done"
    assert keys.once("someone", key, "rollout 1 pause", lambda: "twice") is None
    assert keys.once("someone else", key, "rollout 1 pause", lambda: "theirs") == "theirs"
    assert calls == [1]


def test_the_progress_follows_a_change_live(world: World) -> None:
    a = world.tenants["A"]
    rollout_id = _fresh_rollout(world, a)
    cookies = {"potr_session": mint_token(Role.OPERATOR, region=Region.AU)}
    with serve_asgi(world.app) as port:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, cookies=cookies, timeout=httpx.Timeout(30.0)) as client:
            page = client.get(f"/ui/au/rollouts/{rollout_id}")
            feed = re.search(r'id="rollout" data-feed="([^"]+)"', page.text)
            assert feed is not None
            url = feed.group(1).replace("&amp;", "&")
            assert "state=running" in url
            with client.stream("GET", url) as answer:
                assert answer.headers["content-type"].startswith("text/event-stream")
                frames = frames_of(answer.iter_lines())
                assert next(frames)["event"] == "ready"
                # Paused by another operator (through the service): the open page's
                # progress shows it, and that its forms are now stale.
                _config(world).rollouts.act(rollout_id, "pause", "elsewhere", "op2", region="au")
                frame = next(f for f in frames if f.get("event") == "board")
                html = orjson.loads(frame["data"])["html"]
                assert 'data-rollout-state="paused"' in html
                assert 'id="state-changed"' in html
                assert "elsewhere" in html
