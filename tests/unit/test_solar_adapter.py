"""The pvlib adapter against independent computations: NOAA's solar position equations
(the edge agent's implementation, no pvlib) for daylight,
energy bands reasoned from the sun's geometry and the documented derate for clear sky."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cloud.adapters.solar import PvSite, clear_sky_wh, is_daylight
from edge_agent.daylight import sun_elevation_deg

SYDNEY = (-33.87, 151.21)
MADRID = (40.42, -3.70)
SYDNEY_TZ = ZoneInfo("Australia/Sydney")
#: The sun's true elevation at sunrise and sunset (almanac definition).
SUNRISE_DEG = -0.833
#: The adapter's documented policy: PVWatts' 14 % losses x 96 % inverter x 7 % warm cells.
DERATE = 0.86 * 0.96 * 0.93
NORTH_5KW = PvSite(*SYDNEY, tilt_deg=20.0, azimuth_deg=0.0, kwp=5.0)


def _elevation(lat: float, lon: float, at: datetime) -> float:
    """The reference: NOAA's general solar position equations as the edge agent implements
    them (edge_agent.daylight, no pvlib), true elevation in degrees."""
    return sun_elevation_deg(lat, lon, at)


def _minutes(day: date, step_min: int) -> list[datetime]:
    """Every ``step_min`` minutes of the UTC ``day`` and the half days around it."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=12)
    return [start + timedelta(minutes=m) for m in range(0, 48 * 60, step_min)]


def _solar_noon(lat: float, lon: float, day: date) -> datetime:
    """The minute of the reference's highest sun on the local day around ``day``'s noon."""
    noon_utc = datetime(day.year, day.month, day.day, 12, tzinfo=UTC) - timedelta(hours=lon / 15)
    around = [noon_utc + timedelta(minutes=m) for m in range(-60, 61)]
    return max(around, key=lambda t: _elevation(lat, lon, t))


@pytest.mark.parametrize(
    ("place", "day"),
    [(SYDNEY, date(2024, 6, 21)), (MADRID, date(2024, 12, 21))],
    ids=["sydney-june-solstice", "madrid-december-solstice"],
)
def test_daylight_starts_at_sunrise_and_ends_at_sunset(
    place: tuple[float, float], day: date
) -> None:
    # Sunrise and sunset: the sun's centre at -0.833° (refraction and its radius). Where
    # the reference is clearly above or below (0.25°, about a minute of the sun's climb
    # here), the adapter must agree; both sides occur.
    seen = set()
    for t in _minutes(day, 4):
        elevation = _elevation(*place, t)
        if abs(elevation - SUNRISE_DEG) > 0.25:
            expected = elevation > SUNRISE_DEG
            assert is_daylight(*place, t) is expected, (t, elevation)
            seen.add(expected)
    assert seen == {True, False}


def test_no_daylight_all_day_in_polar_night() -> None:
    # 80°N at the December solstice: the sun peaks at 90 - 80 - 23.44 = -13.4°.
    midnight = datetime(2024, 12, 21, tzinfo=UTC)
    assert not any(is_daylight(80.0, 15.0, midnight + timedelta(hours=h)) for h in range(24))


def test_daylight_at_local_midnight_in_polar_day() -> None:
    # 80°N at the June solstice: the sun's lowest is 80 + 23.44 - 90 = +13.4°.
    midnight = datetime(2024, 6, 21, 0, 0, tzinfo=ZoneInfo("Arctic/Longyearbyen"))
    assert is_daylight(80.0, 15.0, midnight)


def test_nothing_is_expected_at_night() -> None:
    # Sydney in June: sunset about 16:54, sunrise about 07:00.
    start = datetime(2024, 6, 21, 22, 0, tzinfo=SYDNEY_TZ)
    assert clear_sky_wh(NORTH_5KW, start, start + timedelta(hours=6)) == 0.0


def test_an_hour_around_solar_noon_in_a_sydney_summer() -> None:
    # At solar noon on 21 Dec the sun is |-33.87 + 23.44| = 10.4° from the zenith, to the
    # north; a 20° north-facing plane meets it at about 9.6°, and ±30 min (±7.5° of hour
    # angle) keeps cos(incidence) above 0.97. Clear-sky beam at air mass ~1.02 is
    # 850-1000 W/m² plus 80-150 W/m² of diffuse: plane irradiance 850-1200 W/m².
    # 5 kW x (0.85..1.2) x derate x 1 h = 3.27..4.61 kWh.
    noon = _solar_noon(*SYDNEY, date(2024, 12, 21))
    wh = clear_sky_wh(NORTH_5KW, noon - timedelta(minutes=30), noon + timedelta(minutes=30))
    assert 5000 * 0.85 * DERATE <= wh <= 5000 * 1.2 * DERATE


def test_a_clear_summer_day_in_sydney() -> None:
    # Daylength ~14.4 h; 6.5-9.5 peak-sun hours on the plane (clear-sky daily irradiation
    # of 8-8.5 kWh/m² horizontal in a Sydney summer; the north tilt loses the low morning
    # and evening sun, which rises and sets south of east and west).
    # 5 kW x (6.5..9.5) h x derate = 25.0..36.5 kWh.
    day = datetime(2024, 12, 21, tzinfo=SYDNEY_TZ)
    wh = clear_sky_wh(NORTH_5KW, day, day + timedelta(days=1))
    assert 5000 * 6.5 * DERATE <= wh <= 5000 * 9.5 * DERATE


@pytest.mark.parametrize(
    ("start", "hours"),
    [
        (datetime(2024, 12, 21, 11, 0, tzinfo=SYDNEY_TZ), 2.0),
        (datetime(2024, 12, 18, 9, 41, 7, tzinfo=SYDNEY_TZ), 168.0),
    ],
)
def test_never_above_the_nameplate(start: datetime, hours: float) -> None:
    steep_high = PvSite(*SYDNEY, tilt_deg=35.0, azimuth_deg=0.0, kwp=5.0, altitude_m=2000.0)
    for site in (NORTH_5KW, steep_high):
        assert clear_sky_wh(site, start, start + timedelta(hours=hours)) <= 5000 * hours


def test_adjoining_windows_add_up() -> None:
    a = datetime(2024, 12, 20, 5, 0, tzinfo=SYDNEY_TZ)
    b = datetime(2024, 12, 21, 12, 17, 31, tzinfo=SYDNEY_TZ)
    c = datetime(2024, 12, 23, 19, 0, tzinfo=SYDNEY_TZ)
    whole = clear_sky_wh(NORTH_5KW, a, c)
    assert whole > 0
    assert clear_sky_wh(NORTH_5KW, a, b) + clear_sky_wh(NORTH_5KW, b, c) == pytest.approx(
        whole, rel=1e-6
    )


def test_south_facing_makes_less_than_north_facing_in_a_sydney_winter() -> None:
    # The June noon sun at Sydney is 33.87 + 23.44 = 57° from the zenith, in the north.
    south = PvSite(*SYDNEY, tilt_deg=20.0, azimuth_deg=180.0, kwp=5.0)
    day = datetime(2024, 6, 21, tzinfo=SYDNEY_TZ)
    end = day + timedelta(days=1)
    assert clear_sky_wh(south, day, end) < clear_sky_wh(NORTH_5KW, day, end)


def test_an_empty_or_reversed_window_expects_nothing() -> None:
    t = datetime(2024, 12, 21, 12, 0, tzinfo=SYDNEY_TZ)
    assert clear_sky_wh(NORTH_5KW, t, t) == 0.0
    assert clear_sky_wh(NORTH_5KW, t, t - timedelta(hours=1)) == 0.0


def test_naive_datetimes_and_long_windows_are_refused() -> None:
    naive = datetime(2024, 12, 21, 12, 0)
    aware = naive.replace(tzinfo=SYDNEY_TZ)
    with pytest.raises(ValueError, match="start"):
        clear_sky_wh(NORTH_5KW, naive, aware)
    with pytest.raises(ValueError, match="end"):
        clear_sky_wh(NORTH_5KW, aware, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_daylight(*SYDNEY, naive)
    with pytest.raises(ValueError, match="longer"):
        clear_sky_wh(NORTH_5KW, aware, aware + timedelta(days=8, seconds=1))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latitude", 90.5),
        ("latitude", math.nan),
        ("longitude", -180.5),
        ("tilt_deg", -1.0),
        ("tilt_deg", 91.0),
        ("azimuth_deg", -0.1),
        ("azimuth_deg", 360.1),
        ("kwp", 0.0),
        ("kwp", -5.0),
    ],
)
def test_bad_site_values_are_refused(field: str, value: float) -> None:
    values = {"latitude": -33.87, "longitude": 151.21, "tilt_deg": 20.0, "azimuth_deg": 0.0}
    values |= {"kwp": 5.0, field: value}
    with pytest.raises(ValueError, match=field):
        PvSite(**values)


def test_daylight_refuses_a_place_off_the_globe() -> None:
    with pytest.raises(ValueError, match="latitude"):
        is_daylight(-91.0, 0.0, datetime(2024, 1, 1, tzinfo=UTC))
