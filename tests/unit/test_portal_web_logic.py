"""The web UI's pure pieces, without sockets: the power flow, the chart's aligned
columns, energy per year, language choice, the sign-in redirect guard, formats."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from cloud.portal.web.formatting import Formats
from cloud.portal.web.i18n import choose_language
from cloud.portal.web.pages_auth import safe_next
from cloud.portal.web.power_flow import Sample, power_flow
from cloud.portal.web.site_data import chart_columns, energy_by_year

NOW = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


def _s(device: int, metric: str, value: float, age_s: float = 1.0) -> Sample:
    return Sample(device, metric, NOW - timedelta(seconds=age_s), value)


def test_power_flow_adds_inverters_and_balances_the_home() -> None:
    # Two inverters 2 000 + 1 500 W, the battery charging 500 W, exporting 1 200 W:
    # the home uses 3 500 - 500 - 1 200 = 1 800 W.
    flow = power_flow(
        [_s(1, "pv_w", 2000), _s(2, "pv_w", 1500), _s(3, "battery_w", -500),
         _s(4, "grid_w", -1200), _s(4, "grid_hz", 50.0)],
        NOW, timedelta(seconds=10),
    )  # fmt: skip
    assert (flow.pv_w, flow.battery_w, flow.grid_w, flow.home_w) == (3500, -500, -1200, 1800)
    assert flow.exporting
    assert flow.charging
    assert not flow.stale


def test_a_side_without_a_device_is_missing_not_zero() -> None:
    flow = power_flow([_s(1, "pv_w", 800), _s(2, "grid_w", 400)], NOW, timedelta(seconds=10))
    assert flow.battery_w is None
    assert flow.home_w == 1200


def test_power_flow_is_stale_when_the_newest_sample_is_old() -> None:
    assert power_flow([_s(1, "pv_w", 800, age_s=11)], NOW, timedelta(seconds=10)).stale
    empty = power_flow([], NOW, timedelta(seconds=10))
    assert empty.stale
    assert empty.as_of is None
    assert empty.home_w is None


def test_chart_columns_align_series_on_the_union_of_their_times() -> None:
    t = [NOW + timedelta(seconds=5 * i) for i in range(3)]
    labels, xs, columns = chart_columns([("A", [(t[0], 1.0), (t[2], 3.0)]), ("B", [(t[1], 2.0)])])
    assert labels == ["A", "B"]
    assert xs == [int(x.timestamp()) for x in t]
    assert columns == [[1.0, None, 3.0], [None, 2.0, None]]


def test_energy_by_year_sums_months_exactly() -> None:
    months = [
        (date(2025, 11, 1), Decimal("1000.125")),
        (date(2025, 12, 1), Decimal("2000.250")),
        (date(2026, 1, 1), Decimal("0.001")),
        (date(2024, 6, 1), None),
    ]
    assert energy_by_year(months) == {
        2025: Decimal("3000.375"), 2026: Decimal("0.001"), 2024: None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        ("es", "en-GB,en;q=0.9", "es"),  # the person's choice wins
        (None, "es-ES,es;q=0.9,en;q=0.8", "es"),
        (None, "fr-FR,fr;q=0.9,es;q=0.5", "es"),  # best we have
        (None, "de, en;q=0.1", "en"),
        ("xx", None, "en"),
        (None, "es;q=0, en", "en"),  # q=0: not acceptable
        (None, "x" * 5000, "en"),
    ],
)
def test_language_choice(cookie: str | None, header: str | None, expected: str) -> None:
    assert choose_language(cookie, header) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/ui/au/sites/3", "/ui/au/sites/3"),
        ("/ui/au/sites/3/energy?view=month", "/ui/au/sites/3/energy?view=month"),
        ("https://evil.example/ui/au/", None),
        ("//evil.example/ui/au/", None),
        ("/ui/au//evil.example", None),
        ("/ui/au/../../etc", None),
        ("/login", None),
        ("", None),
    ],
)
def test_only_local_portal_paths_are_followed_after_sign_in(
    value: str, expected: str | None
) -> None:
    assert safe_next(value) == expected


def test_formats_follow_language_and_zone() -> None:
    at = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    es, en = Formats("es", "Europe/Madrid"), Formats("en", "Australia/Sydney")
    assert es.power(3210.0) == "3,2 kW"
    assert en.power(3210.0) == "3.2 kW"
    assert en.power(840.4) == "840 W"
    assert en.power(None) == "—"
    assert es.energy(Decimal("12345.6")) == "12,3 kWh"
    assert es.energy(Decimal("350.4")) == "350 Wh"
    assert en.energy(Decimal("25000000")) == "25.0 MWh"
    assert es.time(at) == "14:00"  # UTC+2 in July
    assert en.time(at) == "10:00\u202fPM"  # UTC+10 in July (CLDR's narrow no-break space)
