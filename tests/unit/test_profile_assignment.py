"""Assignment by location: which grid-code profile a site gets, and the rule that says so.

Expected profiles are stated here from shared/design/grid-codes.md, not read from the
rules: §1 (SA Power Networks requires A; Western Power B; Horizon Power C, Amd 2:2024
since 23 Aug 2025; other NEM DNSPs A), §2 (HECO A = O'ahu, Hawai'i Island, Maui; HECO B =
Moloka'i, Lāna'i; California Cat III ride-through), §3 (Spain EN 50549-1).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.config.profile_assignment import (
    RULES_FILE,
    RulesError,
    SiteFacts,
    builtin_rules,
    load_rules,
    resolve,
)

# Places (degrees): Honolulu, Kaunakakai, Lāna'i City, Kahului, Hilo, Lihue.
HONOLULU = (21.307, -157.858)
KAUNAKAKAI = (21.090, -157.020)
LANAI_CITY = (20.828, -156.920)
KAHULUI = (20.889, -156.470)
HILO = (19.721, -155.084)
LIHUE = (21.981, -159.371)

CASES = [
    # (region, utility, place, device type, profile, rule, level)
    ("au", "SA Power Networks", None, None, "au-a-2020", "au-sapn", "utility"),
    ("au", "sapn", None, None, "au-a-2020", "au-sapn", "utility"),
    ("au", "Western Power", None, None, "au-b-2020", "au-western-power", "utility"),
    ("au", "Horizon Power", None, None, "au-c-2024", "au-horizon-power", "utility"),
    ("au", "Ausgrid", None, None, "au-a-2020", "au-default", "region"),
    ("au", None, None, None, "au-a-2020", "au-default", "region"),
    ("au", "TasNetworks", None, None, None, "au-tasnetworks", "utility"),
    ("us", "Hawaiian Electric", HONOLULU, None, "heco-a", "us-heco-oahu", "island"),
    ("us", "HECO", HILO, None, "heco-a", "us-heco-hawaii", "island"),
    ("us", "Maui Electric", KAHULUI, None, "heco-a", "us-heco-maui", "island"),
    ("us", "Maui Electric", KAUNAKAKAI, None, "heco-b", "us-heco-molokai", "island"),
    ("us", "Hawaiian  electric ", LANAI_CITY, None, "heco-b", "us-heco-lanai", "island"),
    ("us", "HECO", None, None, None, "us-heco", "utility"),
    ("us", "HECO", LIHUE, None, None, "us-heco", "utility"),
    ("us", "PG&E", (37.77, -122.42), None, "ieee1547-2018-b-iii", "us-pge", "utility"),
    ("us", "SCE", None, "sim-der-inverter", "ieee1547-2018-b-iii", "us-sce", "utility"),
    (
        "us",
        "SCE",
        None,
        "sim-inverter-103",
        "rule21-sa-legacy",
        "us-sce-legacy-inverter",
        "utility",
    ),
    ("us", "ComEd", None, None, None, "us-default", "region"),
    ("es", "i-DE", None, None, "es-en50549-1", "es-default", "region"),
]


@pytest.mark.parametrize(
    ("region", "utility", "place", "device", "profile", "rule", "level"), CASES
)
def test_each_site_gets_the_profile_of_its_network_and_the_rule_that_chose_it(
    region: str,
    utility: str | None,
    place: tuple[float, float] | None,
    device: str | None,
    profile: str | None,
    rule: str,
    level: str,
) -> None:
    lat, lon = place if place is not None else (None, None)
    site = SiteFacts(site_id=5, region=region, utility=utility, latitude=lat, longitude=lon)
    got = resolve(builtin_rules(), site, device_type=device)
    assert (got.profile, got.rule, got.level) == (profile, rule, level)
    assert got.reason.startswith(f"rule {rule} ")


def _with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_FILE.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


SITE_RULE = """
  - id: site-9-fixed-export
    match: {region: au, site: 9}
    profile: au-a-2020-sapn-fixed
    why: this site's fixed export connection
"""


def test_a_site_rule_wins_over_the_utility_rule(tmp_path: Path) -> None:
    rules = load_rules(_with(tmp_path, SITE_RULE))
    site = SiteFacts(9, "au", "SA Power Networks")
    got = resolve(rules, site, approval_profile="au-a-2020", approval_reference="SAPN-1")
    assert (got.profile, got.rule, got.level) == (
        "au-a-2020-sapn-fixed",
        "site-9-fixed-export",
        "site",
    )
    other = resolve(rules, SiteFacts(13, "au", "SA Power Networks"))
    assert other.rule == "au-sapn"


def test_a_connection_approvals_profile_wins_over_island_utility_and_region() -> None:
    site = SiteFacts(6, "us", "HECO", *HONOLULU)
    got = resolve(builtin_rules(), site, approval_profile="heco-b", approval_reference="HE-77")
    assert (got.profile, got.rule, got.level) == ("heco-b", "approval:HE-77", "approval")
    assert "HE-77" in got.reason


def test_island_comes_from_the_coordinates_and_is_named_in_the_reason() -> None:
    got = resolve(builtin_rules(), SiteFacts(6, "us", "HECO", *KAUNAKAKAI))
    assert got.island == "molokai"
    assert "island molokai" in got.reason


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "\n  - id: au-x\n    match: {region: au, utility: SAPN}\n    profile: au-b-2020\n"
            "    why: a second rule for SAPN\n",
            "the same match as rule au-sapn",
        ),
        (
            "\n  - id: es-endesa\n    match: {region: es, utility: Endesa}\n"
            "    profile: es-en50549-1\n    why: an operator the file does not list\n",
            "utility 'Endesa' is not under utilities",
        ),
        (
            "\n  - id: au-heco\n    match: {region: au, site: 5}\n    profile: heco-a\n"
            "    why: another region's profile\n",
            "profile heco-a is of region us",
        ),
        (
            "\n  - id: au-nope\n    match: {region: au, site: 5}\n    profile: au-z-2020\n"
            "    why: no such profile\n",
            "unknown grid-code profile 'au-z-2020'",
        ),
    ],
)
def test_a_bad_rule_is_refused_on_load_naming_the_rule(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(RulesError, match="rules\\[") as err:
        load_rules(_with(tmp_path, extra))
    assert message in str(err.value)


def test_registration_data_is_only_assigned_per_site(tmp_path: Path) -> None:
    extra = (
        "\n  - id: es-sin\n    match: {region: es, device_type: sim-der-inverter}\n"
        "    profile: es-en50549-1-sin-excedentes\n    why: registration data by type\n"
    )
    with pytest.raises(RulesError, match="only a site rule or a connection approval"):
        load_rules(_with(tmp_path, extra))


def test_overlapping_island_boxes_are_refused(tmp_path: Path) -> None:
    text = RULES_FILE.read_text(encoding="utf-8").replace(
        "  kauai:", "  niihau: {region: us, lat: [21.2, 21.3], lon: [-158.0, -157.9]}\n  kauai:"
    )
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError, match="overlaps oahu"):
        load_rules(path)
