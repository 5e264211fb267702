"""The alarm board, an alarm's page and the operator's forms, the site pages' alarms,
and every person's inbox with its live feed — over ``api_world`` (accounts A and B in
au, E in es, each site with an open "isolator open" alarm stored with its account).

Alarms are raised through the store (:meth:`AlarmStore.raise_condition`) and inbox
entries posted through :meth:`InboxService.post`, as the alerts and notify services do;
the live feed is read from a real uvicorn with httpx, bounded by its read timeout.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from cloud.alerts import AlarmCondition, AlarmStatus, AlarmStore, Severity
from cloud.identity import Role
from cloud.notify import Category, InboxEntryIn, InboxService
from cloud.portal.web import InboxFeed
from cloud.scope import Scope
from contracts.topics import Region
from tests.api_tokens import mint_token
from tests.browser.live import serve_asgi
from tests.integration.api_world import World, api_world, private_database
from tests.integration.sse_frames import frames_of, next_event
from tests.waiting import until_sync

pytestmark = pytest.mark.integration

AU = Scope.of_region(Region.AU)
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_database(postgres_server_url) as url:
        key_dir: Path = tmp_path_factory.mktemp("ui-alarms")
        with api_world(url, key_dir) as built:
            try:
                yield built
            finally:
                if built.web is not None:
                    asyncio.run(built.web.aclose())


def _user() -> str:
    return f"usr_{uuid.uuid4().hex}"


def _client(world: World, role: Role, subject: str | None = None) -> TestClient:
    account = world.tenants["A"].account if role == Role.CUSTOMER else None
    client = TestClient(world.app, base_url="https://testserver", raise_server_exceptions=False)
    token = mint_token(role, region=Region.AU, account_id=account, subject=subject)
    client.cookies.set("potr_session", token)
    return client


def _csrf(client: TestClient) -> str:
    client.get("/login")
    token = client.cookies.get("potr_csrf")
    assert token
    return str(token)


def _raise(
    world: World, tenant: str, *, severity: Severity = Severity.HIGH, **extra: object
) -> int:
    """A new alarm of ``tenant``'s site (a rule of its own: one test's alarm alone)."""
    t = world.tenants[tenant]
    condition = AlarmCondition.model_validate(
        {
            "rule_id": f"test.{uuid.uuid4().hex[:8]}",
            "site_id": t.site,
            "gateway_id": t.gateway,
            "region": t.region,
            "severity": severity,
            "account_id": t.account,
            "title": f"Test alarm {uuid.uuid4().hex[:6]}",
        }
        | extra
    )
    return AlarmStore(world.pool).raise_condition(condition).id


def _state(world: World, alarm_id: int) -> AlarmStatus:
    return AlarmStore(world.pool).get(alarm_id, Scope.everything()).state


# -- the board ----------------------------------------------------------------------------
def test_the_board_lists_the_regions_alarms_only(world: World) -> None:
    with _client(world, Role.OPERATOR) as client:
        board = client.get("/ui/au/alarms")
    assert board.status_code == 200
    assert "Isolator open at site A" in board.text
    assert "Isolator open at site B" in board.text
    assert "Isolator open at site E" not in board.text
    assert 'id="flood"' in board.text
    with _client(world, Role.ADMIN) as client:
        es = client.get("/ui/es/alarms").text
    assert "Isolator open at site E" in es
    assert "Isolator open at site A" not in es


def test_the_board_puts_urgent_first_then_the_longest_waiting(world: World) -> None:
    low = _raise(world, "B", severity=Severity.LOW)
    urgent = _raise(world, "B", severity=Severity.URGENT)
    with _client(world, Role.OPERATOR) as client:
        page = client.get("/ui/au/alarms").text
    rows = [int(n) for n in re.findall(r'<tr data-alarm="(\d+)"', page)]
    # Urgent first; the seeded high alarms (A's, then B's: raised in that order) next;
    # the low one last.
    a, b = world.tenants["A"].alarm, world.tenants["B"].alarm
    assert rows.index(urgent) < rows.index(a) < rows.index(b) < rows.index(low)


def test_support_and_mosies_read_the_board_without_the_operators_forms(world: World) -> None:
    for role in (Role.SUPPORT, Role.MOSIE):
        with _client(world, role) as client:
            page = client.get("/ui/au/alarms").text
            alarm = client.get(f"/ui/au/alarms/{world.tenants['A'].alarm}").text
        assert "Isolator open at site A" in page
        assert "/acknowledge" not in page
        assert "/acknowledge" not in alarm
        assert "/shelve" not in alarm


def test_the_state_filter_lists_shelved_alarms_apart(world: World) -> None:
    alarm = _raise(world, "A", severity=Severity.LOW)
    until = datetime.now(UTC) + timedelta(hours=2)
    AlarmStore(world.pool).shelve(alarm, until, _user(), "maintenance", AU)
    with _client(world, Role.OPERATOR) as client:
        board = client.get("/ui/au/alarms").text
        shelved = client.get("/ui/au/alarms?state=shelved").text
        bad = client.get("/ui/au/alarms?state=nonsense")
    assert f'data-alarm="{alarm}"' not in board
    assert f'data-alarm="{alarm}"' in shelved
    assert bad.status_code == 422


def test_the_board_speaks_spanish(world: World) -> None:
    with _client(world, Role.OPERATOR) as client:
        client.cookies.set("potr_lang", "es")
        board = client.get("/ui/au/alarms").text
    assert "Alarmas en AU" in board
    assert "Sin reconocer" in board


# -- the operator's forms -----------------------------------------------------------------
def test_acknowledging_from_the_board_changes_the_state_and_writes_history(world: World) -> None:
    alarm = _raise(world, "A")
    operator = _user()
    with _client(world, Role.OPERATOR, operator) as client:
        token = _csrf(client)
        url = f"/ui/au/alarms/{alarm}/acknowledge"
        forged = client.post(url, data={"back": "board"}, follow_redirects=False)
        assert forged.status_code == 403
        assert _state(world, alarm) is AlarmStatus.UNACKNOWLEDGED
        done = client.post(url, data={"csrf_token": token, "back": "board"}, follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"] == "/ui/au/alarms"
        assert _state(world, alarm) is AlarmStatus.ACKNOWLEDGED
        again = client.post(url, data={"csrf_token": token})
        assert again.status_code == 409
        assert "cannot be acknowledged now" in again.text
        page = client.get(f"/ui/au/alarms/{alarm}").text
    history = AlarmStore(world.pool).history(alarm, AU)
    assert [(h.action.value, h.actor) for h in history] == [
        ("raise", None),
        ("acknowledge", operator),
    ]
    assert 'data-action="acknowledge"' in page


def test_shelving_needs_a_reason_and_stays_within_the_policy(world: World) -> None:
    alarm = _raise(world, "A", severity=Severity.HIGH)  # high: 8 h at most
    operator = _user()
    with _client(world, Role.OPERATOR, operator) as client:
        token = _csrf(client)
        url = f"/ui/au/alarms/{alarm}/shelve"
        page = client.get(f"/ui/au/alarms/{alarm}").text
        offered = re.findall(r'<option value="(\d+)">', page)
        assert offered == ["15", "60", "240", "480"]  # up to 8 h
        too_long = client.post(url, data={"csrf_token": token, "minutes": 24 * 60, "reason": "x"})
        assert too_long.status_code == 422
        assert "at most 8 h" in too_long.text
        no_reason = client.post(url, data={"csrf_token": token, "minutes": 60, "reason": "  "})
        assert no_reason.status_code == 422
        assert "1 to 500 characters" in no_reason.text
        assert _state(world, alarm) is AlarmStatus.UNACKNOWLEDGED
        form = {"csrf_token": token, "minutes": 60, "reason": "panel cleaning"}
        shelved = client.post(url, data=form, follow_redirects=False)
        assert shelved.status_code == 303
        assert _state(world, alarm) is AlarmStatus.SHELVED
        back = client.post(
            f"/ui/au/alarms/{alarm}/unshelve", data={"csrf_token": token}, follow_redirects=False
        )
        assert back.status_code == 303
    assert _state(world, alarm) is AlarmStatus.UNACKNOWLEDGED
    history = AlarmStore(world.pool).history(alarm, AU)
    assert [(h.action.value, h.actor) for h in history] == [
        ("raise", None),
        ("shelve", operator),
        ("unshelve", operator),
    ]
    assert history[1].detail["reason"] == "panel cleaning"


def test_urgent_alarms_offer_no_shelf_and_refuse_one(world: World) -> None:
    alarm = _raise(world, "A", severity=Severity.URGENT)
    with _client(world, Role.OPERATOR) as client:
        token = _csrf(client)
        page = client.get(f"/ui/au/alarms/{alarm}").text
        assert 'name="minutes"' not in page
        refused = client.post(
            f"/ui/au/alarms/{alarm}/shelve",
            data={"csrf_token": token, "minutes": 15, "reason": "noise"},
        )
    assert refused.status_code == 422
    assert "Urgent alarms cannot be shelved." in refused.text


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.MOSIE, Role.CUSTOMER])
def test_only_the_operators_desk_acts_on_alarms(world: World, role: Role) -> None:
    alarm = world.tenants["A"].alarm
    before = _state(world, alarm)
    with _client(world, role) as client:
        token = _csrf(client)
        for action in ("acknowledge", "unshelve"):
            answer = client.post(f"/ui/au/alarms/{alarm}/{action}", data={"csrf_token": token})
            assert answer.status_code == 403
    assert _state(world, alarm) is before


def test_another_regions_alarm_is_not_found_under_this_regions_url(world: World) -> None:
    far = world.tenants["E"].alarm
    with _client(world, Role.OPERATOR) as client:
        token = _csrf(client)
        assert client.get(f"/ui/au/alarms/{far}").status_code == 404
        posted = client.post(f"/ui/au/alarms/{far}/acknowledge", data={"csrf_token": token})
        assert posted.status_code == 404
        assert client.get("/ui/au/alarms/999999999").status_code == 404
    assert _state(world, far) is AlarmStatus.UNACKNOWLEDGED


# -- a site's notices ---------------------------------------------------------------------
def test_a_customer_sees_the_alarms_stored_with_their_account_on_the_site_page(
    world: World,
) -> None:
    own = world.tenants["A"]
    unowned = _raise(world, "A", account_id=None, title="Stored without an account")
    with _client(world, Role.CUSTOMER) as client:
        page = client.get(f"/ui/au/sites/{own.site}").text
    assert "Isolator open at site A" in page
    assert "Stored without an account" not in page
    assert "/alarms/" not in page  # no link to the staff's alarm page
    with _client(world, Role.OPERATOR) as client:
        staff = client.get(f"/ui/au/sites/{own.site}").text
    assert "Stored without an account" in staff
    assert f"/ui/au/alarms/{unowned}" in staff


# -- the inbox ----------------------------------------------------------------------------
def _entry(title: str, *, region: Region = Region.AU) -> InboxEntryIn:
    return InboxEntryIn(
        notification_id=uuid.uuid4(),
        region=region,
        kind="alarm_raised",
        category=Category.ALARM,
        title=title,
        body=f"About {title}",
        link="/ui/au/alarms",
        created_at=datetime.now(UTC),
    )


def test_the_inbox_lists_a_persons_own_entries_newest_first_with_a_badge(world: World) -> None:
    inbox = InboxService(world.pool)
    me, someone = _user(), _user()
    first = inbox.post(me, _entry("First news"))
    inbox.post(me, _entry("Second news"))
    theirs = inbox.post(someone, _entry("Not yours"))
    assert first is not None
    assert theirs is not None
    with _client(world, Role.CUSTOMER, me) as client:
        page = client.get("/ui/au/inbox", headers=HTML).text
        assert page.index("Second news") < page.index("First news")
        assert "Not yours" not in page
        assert re.search(r"data-unread-count>2<", page)
        token = _csrf(client)
        forged = client.post(f"/ui/au/inbox/{first.id}/read", data={})
        assert forged.status_code == 403
        read = client.post(
            f"/ui/au/inbox/{first.id}/read", data={"csrf_token": token}, follow_redirects=False
        )
        assert read.status_code == 303
        assert inbox.unread_count(me) == 1
        other = client.post(f"/ui/au/inbox/{theirs.id}/read", data={"csrf_token": token})
        assert other.status_code == 404
        assert inbox.unread_count(someone) == 1
        client.post("/ui/au/inbox/read-all", data={"csrf_token": token})
        assert inbox.unread_count(me) == 0
        after = client.get("/ui/au/inbox", headers=HTML).text
    assert re.search(r"data-unread-badge hidden", after)


def test_the_inbox_under_another_regions_url_is_for_admins_only(world: World) -> None:
    for role in Role:
        with _client(world, role) as client:
            page = client.get("/ui/es/inbox", follow_redirects=False)
            assert page.status_code == (200 if role == Role.ADMIN else 404)
            if role != Role.ADMIN:  # an admin's streams: read over a real server below
                assert client.get("/ui/es/inbox/events").status_code == 404


def test_the_live_feed_streams_an_entry_posted_after_connecting(world: World) -> None:
    inbox = InboxService(world.pool)
    me = _user()
    cookies = {"potr_session": mint_token(Role.OPERATOR, region=Region.AU, subject=me)}
    with serve_asgi(world.app) as port:
        base = f"http://127.0.0.1:{port}"
        timeout = httpx.Timeout(30.0)
        with httpx.Client(base_url=base, cookies=cookies, timeout=timeout) as client:
            with client.stream("GET", "/ui/au/inbox/events") as answer:
                assert answer.status_code == 200
                assert answer.headers["content-type"].startswith("text/event-stream")
                frames = frames_of(answer.iter_lines())
                ready = next_event(frames, "ready")
                inbox.post(me, _entry("Live news"))
                entry = orjson.loads(next_event(frames, "entry")["data"])
                assert "Live news" in entry["html"]
                assert entry["read"] is False
                unread = next_event(frames, "unread")
                assert unread["data"] == "1"
                assert int(unread["id"]) > int(ready["id"])
            # Posted while away: a reconnect with the last id it saw gets it first.
            inbox.post(me, _entry("While away"))
            headers = {"last-event-id": unread["id"]}
            with client.stream("GET", "/ui/au/inbox/events", headers=headers) as answer:
                frames = frames_of(answer.iter_lines())
                missed = orjson.loads(next_event(frames, "entry")["data"])
                assert "While away" in missed["html"]
                assert next_event(frames, "unread")["data"] == "2"
        # The client gone, its stream ends (and stops watching) at once.
        assert world.web is not None
        feed = world.web.inbox
        assert feed is not None
        until_sync(lambda: feed.open_streams == 0, 10, "the streams to end with their clients")


async def test_a_stream_ends_after_its_lifetime(world: World) -> None:
    inbox = InboxService(world.pool)
    feed = InboxFeed(inbox, None, wait_s=0.05, lifetime_s=0.3)
    me = _user()

    async def present() -> bool:
        return False

    frames: list[str] = []
    async with asyncio.timeout(10):
        async for frame in feed.stream(me, None, lambda e: e.title, present):
            frames.append(frame)
    assert frames[0].startswith("retry: ")
    assert "event: ready" in frames[0]
