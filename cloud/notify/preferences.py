"""Who gets a notification how and when: pure functions of the notification, the
recipients, their preferences and the time.

* The inbox gets every notification at once. E-mail goes to those who chose the
  category (safety always, when there is an address); webhooks to the endpoints of
  those who chose the category.
* **Quiet hours** defer e-mail, never drop it: it waits until the person's wall clock
  leaves the quiet hours. An urgent safety notice ignores them. The inbox is silent and
  webhooks reach machines (the receiver pages people by its own rules): neither waits.
* Quiet hours are read on the person's wall clock in their IANA zone, so they stay
  22:00-07:00 local across daylight-saving changes: mail waits until the first instant
  at which the clock shows a time outside them. When the clock springs forward over the
  end (02:30 on a night that skips 02:00-03:00) that is the jump itself; when it falls
  back into the quiet hours they hold again until the clock passes their end once more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from math import floor
from zoneinfo import ZoneInfo

from cloud.notify.models import (
    Category,
    Channel,
    Delivery,
    Language,
    Notification,
    Preferences,
    QuietHours,
    Recipient,
)
from contracts.topics import Region

__all__ = ["deliveries", "effective_preferences", "mail_send_after", "quiet_until"]

#: Offset changes crossed while looking for the end of one night's quiet hours; real
#: zones change at most twice a day.
_MAX_SEGMENTS = 8
_SECOND = timedelta(seconds=1)


def quiet_until(now: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at or after ``now`` at which the wall clock in ``zone``
    shows a time outside ``quiet``: ``now`` itself when it is not quiet there."""
    at = now.astimezone(UTC)
    for _ in range(_MAX_SEGMENTS):
        offset = _offset(at, zone)
        wall = (at + offset).replace(tzinfo=None)
        if not quiet.contains(wall.time()):
            return at
        # While the offset holds, the wall clock runs with UTC: quiet until it shows
        # the end, unless the offset changes first (then look again from the change).
        end = datetime.combine(_end_day(wall, quiet), quiet.end)
        candidate = (end - offset).replace(tzinfo=UTC)
        change = _offset_change(at, candidate, offset, zone)
        if change is None:
            return candidate
        at = change
    return at


def mail_send_after(notification: Notification, prefs: Preferences, now: datetime) -> datetime:
    """When an e-mail of ``notification`` may go to a person with ``prefs`` (UTC)."""
    if prefs.quiet_hours is None or notification.ignores_quiet_hours:
        return now.astimezone(UTC)
    return quiet_until(now, prefs.quiet_hours, ZoneInfo(prefs.time_zone))


def effective_preferences(
    recipient: Recipient, stored: Preferences | None, region: Region
) -> Preferences:
    """The preferences that apply: the person's saved ones, else the defaults with the
    caller's hints (language, zone; the region's language without one) and whatever
    endpoints ``stored`` lists."""
    if stored is not None and stored.saved:
        return stored
    base = stored if stored is not None else Preferences(user_id=recipient.user_id)
    language: Language = recipient.language or ("es" if region is Region.ES else "en")
    return base.model_copy(update={"language": language, "time_zone": recipient.time_zone or "UTC"})


def deliveries(
    notification: Notification,
    recipients: Sequence[Recipient],
    prefs: Mapping[str, Preferences],
    now: datetime,
) -> list[Delivery]:
    """Every delivery of ``notification``: per recipient (the first of a repeated user
    id), one inbox entry, an e-mail when chosen (safety: always) and an address is known,
    one webhook per endpoint when chosen. Nothing is dropped for the hour: e-mail waits
    for the end of quiet hours (``send_after``)."""
    now_utc = now.astimezone(UTC)
    planned: list[Delivery] = []
    seen: set[str] = set()
    for recipient in recipients:
        if recipient.user_id in seen:
            continue
        seen.add(recipient.user_id)
        p = effective_preferences(recipient, prefs.get(recipient.user_id), notification.region)
        planned.append(_delivery(recipient, p, Channel.INBOX, recipient.user_id, now_utc))
        category = notification.category
        if recipient.email is not None and (category in p.email or category is Category.SAFETY):
            send_after = mail_send_after(notification, p, now_utc)
            planned.append(_delivery(recipient, p, Channel.EMAIL, recipient.email, send_after))
        if category in p.webhook:
            planned.extend(_delivery(recipient, p, Channel.WEBHOOK, e, now_utc) for e in p.webhooks)
    return planned


def _delivery(
    recipient: Recipient, prefs: Preferences, channel: Channel, destination: str, at: datetime
) -> Delivery:
    return Delivery(
        user_id=recipient.user_id,
        channel=channel,
        destination=destination,
        send_after=at,
        language=prefs.language,
        time_zone=prefs.time_zone,
    )


def _offset(at: datetime, zone: ZoneInfo) -> timedelta:
    offset = at.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always answers
    return offset


def _end_day(wall: datetime, quiet: QuietHours) -> datetime:
    """The local day on which the quiet hours ``wall`` is inside of end."""
    if quiet.start < quiet.end or wall.time() < quiet.end:
        return wall
    return wall + timedelta(days=1)


def _offset_change(
    start: datetime, end: datetime, offset: timedelta, zone: ZoneInfo
) -> datetime | None:
    """The first instant in (``start``, ``end``] at which ``zone``'s offset is no longer
    ``offset``, or None when it still is at ``end``. Zones change offset on whole
    seconds, so bisecting whole seconds finds it exactly."""
    if _offset(end, zone) == offset:
        return None
    lo = floor(start.timestamp())  # same offset: ``start``'s segment began on a second
    hi = floor(end.timestamp())
    if datetime.fromtimestamp(hi, UTC) < end:
        hi += 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(datetime.fromtimestamp(mid, UTC), zone) == offset:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)
