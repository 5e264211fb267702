"""The templates' rarer branches, rendered without a server: a fleet with yesterday's
completeness (sampled), a site with every kind of notice and a faulty device, in both
languages — a wrong attribute name fails here (StrictUndefined), not in production."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from starlette.requests import Request

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
            notices=site_notices(devices, flow, [swap]),
        )  # fmt: skip
        text = bytes(page.body).decode()
        assert words in text
        assert "OLD" in text
        assert "NEW" in text
