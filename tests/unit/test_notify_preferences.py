"""Who gets a notification how and when (cloud.notify.preferences), without sockets.

Expected instants are worked out by hand from the zones' published DST rules (Spain:
last Sunday of March 02:00 CET -> 03:00 CEST, last Sunday of October 03:00 CEST ->
02:00 CET; New South Wales: first Sunday of October 02:00 AEST -> 03:00 AEDT; Lord Howe
Island: the same day, 02:00 +10:30 -> 02:30 +11). The property tests compare the
function with a minute-by-minute walk of the wall clock across real DST changes.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.notify import (
    Category,
    Channel,
    Notification,
    Preferences,
    PreferencesIn,
    QuietHours,
    Recipient,
    Severity,
    deliveries,
    quiet_until,
)
from contracts.topics import Region

MADRID = ZoneInfo("Europe/Madrid")
SYDNEY = ZoneInfo("Australia/Sydney")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
ANA = "usr_" + "a" * 32
BEN = "usr_" + "b" * 32
ORG = "usr_" + "c" * 32
HOOK = "whk_" + "1" * 32
HOOK2 = "whk_" + "2" * 32


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _quiet(start: str, end: str) -> QuietHours:
    return QuietHours(start=time.fromisoformat(start), end=time.fromisoformat(end))


# -- quiet hours on the wall clock -------------------------------------------------------
@pytest.mark.parametrize(
    ("zone", "quiet", "now", "expected"),
    [
        # 00:00 CET on the night Spain springs forward: 07:00 is CEST (+2) -> 05:00Z
        (MADRID, ("22:00", "07:00"), _utc(2025, 3, 29, 23, 0), _utc(2025, 3, 30, 5, 0)),
        # 02:30 never shows that night: the clock leaves the quiet hours at the jump to
        # 03:00, 02:00 CET = 01:00Z
        (MADRID, ("22:00", "02:30"), _utc(2025, 3, 30, 0, 0), _utc(2025, 3, 30, 1, 0)),
        # 23:00 CEST before falling back: 07:00 is CET (+1) -> 06:00Z
        (MADRID, ("22:00", "07:00"), _utc(2025, 10, 25, 21, 0), _utc(2025, 10, 26, 6, 0)),
        # falling back 03:00 -> 02:00: first 02:20 CEST is quiet until the first 02:30
        (MADRID, ("00:30", "02:30"), _utc(2025, 10, 26, 0, 20), _utc(2025, 10, 26, 0, 30)),
        # 02:45 CEST is outside ...
        (MADRID, ("00:30", "02:30"), _utc(2025, 10, 26, 0, 45), _utc(2025, 10, 26, 0, 45)),
        # ... but the clock falls back into them: 02:10 CET waits for 02:30 CET (01:30Z)
        (MADRID, ("00:30", "02:30"), _utc(2025, 10, 26, 1, 10), _utc(2025, 10, 26, 1, 30)),
        # 22:00 AEST the night NSW springs forward: 07:00 AEDT (+11) -> 20:00Z
        (SYDNEY, ("22:00", "07:00"), _utc(2025, 10, 4, 12, 0), _utc(2025, 10, 4, 20, 0)),
        # Lord Howe's half-hour jump 02:00 -> 02:30 (15:30Z) skips the end at 02:15
        (LORD_HOWE, ("01:00", "02:15"), _utc(2025, 10, 4, 15, 0), _utc(2025, 10, 4, 15, 30)),
        # midday in Madrid is not quiet: now
        (MADRID, ("22:00", "07:00"), _utc(2025, 7, 1, 10, 0), _utc(2025, 7, 1, 10, 0)),
        # a window inside one day: 13:30 CEST waits for 15:00 CEST = 13:00Z
        (MADRID, ("13:00", "15:00"), _utc(2025, 7, 1, 11, 30), _utc(2025, 7, 1, 13, 0)),
        # the start is inside, the end is not
        (MADRID, ("22:00", "07:00"), _utc(2025, 7, 1, 20, 0), _utc(2025, 7, 2, 5, 0)),
        (MADRID, ("22:00", "07:00"), _utc(2025, 7, 2, 5, 0), _utc(2025, 7, 2, 5, 0)),
    ],
)
def test_quiet_hours_end_on_the_wall_clock(
    zone: ZoneInfo, quiet: tuple[str, str], now: datetime, expected: datetime
) -> None:
    assert quiet_until(now, _quiet(*quiet), zone) == expected


def test_empty_quiet_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="different times"):
        _quiet("22:00", "22:00")
    with pytest.raises(ValueError, match="whole minutes"):
        QuietHours(start=time(22, 0, 30), end=time(7))


# -- property: against a walk of the wall clock across real DST changes -----------------
ZONES = [
    "Europe/Madrid",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/New_York",
    "America/Santiago",  # changes at midnight: the skipped hour is 00:00-01:00
    "America/Havana",  # the same
    "Pacific/Chatham",  # +12:45 / +13:45
    "Antarctica/Troll",  # a two-hour jump
]
_MINUTE = timedelta(minutes=1)


@functools.cache
def _transitions(name: str) -> tuple[datetime, ...]:
    """The zone's offset changes in 2025-2026 (UTC, to the minute), found by stepping."""
    zone = ZoneInfo(name)
    found = []
    at = _utc(2025, 1, 1)
    while at.year < 2027:
        nxt = at + timedelta(hours=1)
        if at.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            lo = at
            while lo.astimezone(zone).utcoffset() == at.astimezone(zone).utcoffset():
                lo += _MINUTE
            found.append(lo)
        at = nxt
    return tuple(found)


def _inside(wall: time, start: time, end: time) -> bool:
    return start <= wall < end if start < end else (wall >= start or wall < end)


def _walk(now: datetime, start: time, end: time, zone: ZoneInfo) -> datetime:
    """The first instant >= now whose wall time is outside [start, end): minute by minute
    (wall times change only on whole UTC minutes in these zones)."""
    if not _inside(now.astimezone(zone).time(), start, end):
        return now
    at = now.replace(second=0, microsecond=0) + _MINUTE
    for _ in range(3 * 24 * 60):
        if not _inside(at.astimezone(zone).time(), start, end):
            return at
        at += _MINUTE
    raise AssertionError("never left the quiet hours")


@st.composite
def _night_near_a_change(draw: st.DrawFn) -> tuple[datetime, time, time, ZoneInfo]:
    name = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(name)
    change = draw(st.sampled_from(_transitions(name)))
    now = change + timedelta(seconds=draw(st.integers(-36 * 3600, 36 * 3600)))
    # Quiet-hour bounds often sit on the wall times around the change itself.
    before = (change - _MINUTE).astimezone(zone)
    after = change.astimezone(zone)
    near = [
        (t + timedelta(minutes=d)).time().replace(second=0)
        for t in (before, after)
        for d in (-30, -1, 0, 1, 30)
    ]
    minute = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
    start = draw(st.one_of(minute, st.sampled_from(near)))
    end = draw(st.one_of(minute, st.sampled_from(near)).filter(lambda t: t != start))
    return now, start, end, zone


@settings(max_examples=250, deadline=None)
@given(_night_near_a_change())
def test_quiet_hours_match_a_walk_of_the_wall_clock(
    case: tuple[datetime, time, time, ZoneInfo],
) -> None:
    now, start, end, zone = case
    assert quiet_until(now, QuietHours(start=start, end=end), zone) == _walk(now, start, end, zone)


# -- deliveries --------------------------------------------------------------------------
NIGHT_IN_MADRID = _utc(2025, 3, 29, 23, 0)  # 00:00 CET


def _notification(
    category: Category = Category.ALARM, severity: Severity = Severity.WARNING
) -> Notification:
    return Notification(
        id=uuid.uuid4(),
        kind="alarm_raised",
        category=category,
        severity=severity,
        region=Region.ES,
        params={"site": "Calle Mayor 1", "alarm": "Grid fault", "raised_at": NIGHT_IN_MADRID},
        created_at=NIGHT_IN_MADRID,
    )


def _saved(user: str, **fields: object) -> Preferences:
    data: dict[str, object] = {
        "user_id": user,
        "language": "es",
        "time_zone": "Europe/Madrid",
        "quiet_hours": _quiet("22:00", "07:00"),
        "saved": True,
    }
    return Preferences.model_validate(data | fields)


def test_an_alarm_at_night_waits_by_mail_and_reaches_the_inbox_at_once() -> None:
    planned = deliveries(
        _notification(),
        [Recipient(user_id=ANA, email="ana@example.es")],
        {ANA: _saved(ANA)},
        NIGHT_IN_MADRID,
    )
    assert [(d.channel, d.send_after) for d in planned] == [
        (Channel.INBOX, NIGHT_IN_MADRID),
        (Channel.EMAIL, _utc(2025, 3, 30, 5, 0)),  # 07:00 CEST
    ]
    assert planned[1].destination == "ana@example.es"
    assert (planned[1].language, planned[1].time_zone) == ("es", "Europe/Madrid")


def test_an_urgent_safety_notice_ignores_quiet_hours() -> None:
    urgent = _notification(Category.SAFETY, Severity.URGENT)
    planned = deliveries(
        urgent,
        [Recipient(user_id=ANA, email="ana@example.es")],
        {ANA: _saved(ANA)},
        NIGHT_IN_MADRID,
    )
    assert [(d.channel, d.send_after) for d in planned] == [
        (Channel.INBOX, NIGHT_IN_MADRID),
        (Channel.EMAIL, NIGHT_IN_MADRID),
    ]


def test_a_safety_notice_that_is_not_urgent_waits_and_is_mailed_even_if_unchosen() -> None:
    notice = _notification(Category.SAFETY, Severity.WARNING)
    prefs = {ANA: _saved(ANA, email=frozenset())}
    planned = deliveries(
        notice, [Recipient(user_id=ANA, email="ana@example.es")], prefs, NIGHT_IN_MADRID
    )
    assert [(d.channel, d.send_after) for d in planned][1] == (
        Channel.EMAIL,
        _utc(2025, 3, 30, 5, 0),
    )


def test_offers_are_mailed_only_to_those_who_chose_them() -> None:
    offer = _notification(Category.OFFER, Severity.INFO)
    recipients = [
        Recipient(user_id=ANA, email="ana@example.es"),
        Recipient(user_id=BEN, email="ben@example.es"),
    ]
    prefs = {BEN: _saved(BEN, email=frozenset({Category.OFFER}), quiet_hours=None)}
    planned = deliveries(offer, recipients, prefs, NIGHT_IN_MADRID)
    assert {(d.user_id, d.channel) for d in planned} == {
        (ANA, Channel.INBOX),
        (BEN, Channel.INBOX),
        (BEN, Channel.EMAIL),
    }


def test_webhooks_go_to_every_endpoint_of_those_who_chose_the_category_at_once() -> None:
    prefs = {
        ORG: _saved(ORG, webhook=frozenset({Category.ALARM}), webhooks=(HOOK, HOOK2)),
        BEN: _saved(BEN, webhook=frozenset({Category.NOTICE}), webhooks=(HOOK,)),
    }
    planned = deliveries(
        _notification(), [Recipient(user_id=ORG), Recipient(user_id=BEN)], prefs, NIGHT_IN_MADRID
    )
    hooks = [
        (d.user_id, d.destination, d.send_after) for d in planned if d.channel is Channel.WEBHOOK
    ]
    assert hooks == [(ORG, HOOK, NIGHT_IN_MADRID), (ORG, HOOK2, NIGHT_IN_MADRID)]


def test_a_repeated_recipient_is_notified_once() -> None:
    planned = deliveries(
        _notification(),
        [Recipient(user_id=ANA, email="a@example.es"), Recipient(user_id=ANA, email="b@x.es")],
        {},
        NIGHT_IN_MADRID,
    )
    assert [(d.channel, d.destination) for d in planned] == [
        (Channel.INBOX, ANA),
        (Channel.EMAIL, "a@example.es"),
    ]


def test_without_saved_preferences_the_callers_hints_apply() -> None:
    hinted = Recipient(user_id=ANA, email="a@example.com", language="en", time_zone="Europe/Madrid")
    bare = Recipient(user_id=BEN, email="b@example.es")
    planned = deliveries(_notification(), [hinted, bare], {}, NIGHT_IN_MADRID)
    mails = {d.user_id: d for d in planned if d.channel is Channel.EMAIL}
    assert (mails[ANA].language, mails[ANA].time_zone) == ("en", "Europe/Madrid")
    # no hint: the notification's region's language (es), UTC; no quiet hours by default
    assert (mails[BEN].language, mails[BEN].time_zone) == ("es", "UTC")
    assert mails[BEN].send_after == NIGHT_IN_MADRID


_users = st.lists(
    st.integers(0, 15).map(lambda n: f"usr_{n:032x}"), min_size=1, max_size=6, unique=True
)


@settings(max_examples=150, deadline=None)
@given(
    users=_users,
    category=st.sampled_from(list(Category)),
    severity=st.sampled_from(list(Severity)),
    emails=st.lists(st.booleans(), min_size=6, max_size=6),
    chosen=st.lists(st.frozensets(st.sampled_from(list(Category))), min_size=6, max_size=6),
    start=st.integers(0, 1439),
    length=st.integers(1, 1439),
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)),
    zone=st.sampled_from(ZONES),
)
def test_nothing_is_dropped_and_no_mail_goes_out_in_quiet_hours(
    users: list[str],
    category: Category,
    severity: Severity,
    emails: list[bool],
    chosen: list[frozenset[Category]],
    start: int,
    length: int,
    now: datetime,
    zone: str,
) -> None:
    quiet = QuietHours(
        start=time(start // 60, start % 60),
        end=time(((start + length) % 1440) // 60, (start + length) % 60),
    )
    now = now.replace(tzinfo=UTC)
    recipients = [
        Recipient(user_id=u, email=f"{i}@example.com" if emails[i] else None)
        for i, u in enumerate(users)
    ]
    prefs = {
        u: Preferences(
            user_id=u,
            time_zone=zone,
            quiet_hours=quiet,
            email=chosen[i],
            saved=True,
        )
        for i, u in enumerate(users)
    }
    notification = _notification(category, severity)
    planned = deliveries(notification, recipients, prefs, now)
    for i, user in enumerate(users):
        mine = [d for d in planned if d.user_id == user]
        assert [d.channel for d in mine if d.channel is Channel.INBOX] == [Channel.INBOX]
        mails = [d for d in mine if d.channel is Channel.EMAIL]
        wanted = emails[i] and (category in chosen[i] or category is Category.SAFETY)
        assert len(mails) == (1 if wanted else 0)
        for mail in mails:
            assert mail.send_after >= now
            if category is Category.SAFETY and severity is Severity.URGENT:
                assert mail.send_after == now
            else:
                wall = mail.send_after.astimezone(ZoneInfo(zone)).time()
                assert not _inside(wall, quiet.start, quiet.end)


def test_preferences_refuse_unknown_zones() -> None:
    with pytest.raises(ValueError, match="IANA"):
        PreferencesIn(time_zone="Mars/Olympus")
