"""The templates' rarer branches, rendered without a server: a fleet with yesterday's
completeness (sampled), a site with every kind of notice and a faulty device, in both
languages — a wrong attribute name fails here (StrictUndefined), not in production."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from cloud.alerts import AlarmStatus, FloodMetrics, Severity
from cloud.identity import Role
from cloud.ingest import (
    DeviceCounts,
    FleetStatus,
    GatewayCounts,
    GatewayState,
    IngestHealth,
    RegionCompleteness,
)
from cloud.portal.authz import CallerData
from cloud.portal.web.assets import Assets
from cloud.portal.web.cookies import CookieJar
from cloud.portal.web.formatting import Formats
from cloud.portal.web.i18n import load_translations
from cloud.portal.web.notices import site_notices
from cloud.portal.web.power_flow import PowerFlow
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import Viewer
from cloud.scope import Scope
from contracts.topics import Region

AT = datetime(2026, 12, 3, 23, 0, tzinfo=UTC)


def _request(path: str) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    )


def _viewer(role: Role, language: str) -> Viewer:
    caller = CallerData(subject="usr_1", role=role, region=Region.AU)
    return Viewer(caller, Region.AU, Scope.of_region(Region.AU), language, Formats(language))


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(load_translations(), Assets(), CookieJar(), live_interval_s=2.0)


@pytest.mark.parametrize(("language", "expected"), [("en", "98.5 %"), ("es", "98,5 %")])
def test_the_fleet_with_yesterdays_completeness(
    renderer: Renderer, language: str, expected: str
) -> None:
    page = renderer.page(
        _request("/ui/au/fleet"), "fleet.html", language=language,
        viewer=_viewer(Role.OPERATOR, language), regions=["au", "us", "es"],
        status=FleetStatus(region="au", gateways=GatewayCounts(online=3, offline=1),
                           devices=DeviceCounts(online=5, faulty=1)),
        gateways=[GatewayState(gateway_id="gw-1", site_id=7, status="offline", online=False,
                               last_seen=AT, since=AT, devices=DeviceCounts(unknown=2))],
        health=IngestHealth(region="au", at=AT, readings_last_5m=10, readings_last_hour=100,
                            dead_letters_last_hour=2, newest_reading_at=AT,
                            newest_reading_age_s=3.0, last_stored_at=AT),
        completeness=RegionCompleteness(region="au", days=[date(2026, 12, 3)], devices=4100,
                                        device_days=2000, average_percent=98.5, sampled=True),
        sites={7: SimpleNamespace(name="Site seven")},
    )  # fmt: skip
    text = bytes(page.body).decode()
    assert page.status_code == 200
    assert expected in text
    assert ("sampled" if language == "en" else "muestreada") in text
    assert "Site seven" in text


def test_a_site_with_every_notice(renderer: Renderer) -> None:
    device = SimpleNamespace(
        id=1, local_id="INV-1", serial="SN-9", kind="inverter", manufacturer="M", model="X"
    )
    devices = [SimpleNamespace(device=device, status="faulty", since=AT)]
    flow = PowerFlow(None, None, None, None, AT, stale=True)
    swap = SimpleNamespace(
        replaced_at=AT, old_serial="OLD", new_serial="NEW", old_register_kwh=Decimal(1)
    )
    site = SimpleNamespace(id=7, name="Site seven", utility=None, time_zone="Australia/Sydney")
    for language, words in (("en", "reports a fault"), ("es", "informa de una avería")):
        page = renderer.page(
            _request("/ui/au/sites/7"), "site.html", language=language,
            viewer=_viewer(Role.CUSTOMER, language), site=site, devices=devices, flow=flow,
            base="/ui/au", as_customer=None, gateways=[],
            notices=site_notices(devices, flow, [swap]), alarms=[_alarm()], alarm_links=False,
        )  # fmt: skip
        text = bytes(page.body).decode()
        assert words in text
        assert "OLD" in text
        assert "NEW" in text
        assert "Isolator open" in text
        assert ("Acknowledged" if language == "en" else "Reconocida") in text


def _alarm(state: AlarmStatus = AlarmStatus.ACKNOWLEDGED) -> SimpleNamespace:
    return SimpleNamespace(
        id=5, title="Isolator open", severity=Severity.HIGH, state=state, count=3, site_id=7,
        gateway_id="gw-1", device=None, active=True, first_raised_at=AT, last_seen_at=AT,
        shelved_until=AT, shelve_reason="cleaning", acked_at=AT,
    )  # fmt: skip


@pytest.mark.parametrize(("language", "heading"), [("en", "Alarms in AU"), ("es", "Alarmas en AU")])
def test_the_alarm_board_and_an_alarms_page(
    renderer: Renderer, language: str, heading: str
) -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    flood = FloodMetrics(
        region=Region.AU, since=AT, until=now, windows=[], annunciated=30, per_hour=1.25,
        peak=12, windows_in_flood=2, flood_percent=1.4, stale=1,
        priority_mix={Severity.HIGH: 20, Severity.LOW: 10},
    )  # fmt: skip
    site = SimpleNamespace(id=7, name="Site seven", time_zone="Australia/Sydney")
    viewer = _viewer(Role.OPERATOR, language)
    board = renderer.page(
        _request("/ui/au/alarms"), "alarms.html", language=language, viewer=viewer,
        state="annunciated", board_url="/ui/au/alarms", severities=list(Severity)[::-1],
        may_act=True, alarms=[_alarm(AlarmStatus.UNACKNOWLEDGED), _alarm(AlarmStatus.SHELVED)],
        truncated=True, flood=flood, sites={7: site},
    )  # fmt: skip
    text = bytes(board.body).decode()
    assert heading in text
    assert "/alarms/5/acknowledge" in text
    assert "/alarms/5/unshelve" in text
    assert "Site seven" in text
    history = [
        SimpleNamespace(at=AT, action=SimpleNamespace(value=a), actor=actor, detail=detail,
                        to_state=AlarmStatus.SHELVED)
        for a, actor, detail in (("raise", None, {"count": 1}),
                                 ("shelve", "usr_1", {"reason": "cleaning"}))
    ]  # fmt: skip
    page = renderer.page(
        _request("/ui/au/alarms/5"), "alarm.html", language=language, viewer=viewer,
        fmt=viewer.formats, may_act=True, shelve_choices=[15, 60, 480], max_reason=500,
        refusal="refused here", status_code=409, alarm=_alarm(AlarmStatus.ACKNOWLEDGED),
        history=history, site=site,
    )  # fmt: skip
    text = bytes(page.body).decode()
    assert page.status_code == 409
    assert "refused here" in text
    assert 'name="minutes"' in text
    assert "cleaning" in text
    assert ("the system" if language == "en" else "el sistema") in text


def test_an_inbox_with_read_and_unread_entries(renderer: Renderer) -> None:
    entry = SimpleNamespace(
        id="e1", title="News", body="Body", link="/ui/au/alarms", created_at=AT, read_at=None
    )
    read = SimpleNamespace(id="e2", title="Old news", body="", link=None, created_at=AT, read_at=AT)
    viewer = Viewer(
        CallerData(subject="usr_1", role=Role.MOSIE, region=Region.AU), Region.AU,
        Scope.of_region(Region.AU), "es", Formats("es"), unread=1,
    )  # fmt: skip
    page = renderer.page(
        _request("/ui/au/inbox"), "inbox.html", language="es", viewer=viewer,
        entries=[entry, read], older="12", cursor="40", first_page=True,
    )  # fmt: skip
    text = bytes(page.body).decode()
    assert "Bandeja de entrada" in text
    assert "/ui/au/inbox/e1/read" in text
    assert "/ui/au/inbox/e2/read" not in text
    assert 'data-feed="/ui/au/inbox/events?cursor=40"' in text
    assert "data-unread-count>1<" in text
