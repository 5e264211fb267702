"""Which grid-code profile a site gets, and why (pure: no I/O once the rules are loaded).

The rules are data (``profile_rules.yaml`` beside this module): each matches on a region
and any of a site, an island, a network operator (utility) and a device type, and names a
profile (or ``null``: "no profile here", with why). :func:`resolve` picks the most
specific matching rule, compared field by field in this order:

    site rule  >  the connection approval's profile  >  island  >  utility
      >  device type  >  region default

A site's island is derived from its coordinates (:func:`island_of`: one box per island in
the rules file, boxes never overlap), so it cannot disagree with where the site is; a site
without coordinates has no island. Loading refuses, naming the file and the rule: an
unknown profile, a profile of another region, a registration-only profile (Spain's sin
excedentes) in anything but a site rule, two rules with the same match, an unknown island
or utility, overlapping island boxes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from device_profiles import GridCodeProfile, builtin_grid_codes

__all__ = [
    "LEVELS",
    "RULES_FILE",
    "Assignment",
    "AssignmentRule",
    "AssignmentRules",
    "Island",
    "RulesError",
    "SiteFacts",
    "builtin_rules",
    "island_of",
    "load_rules",
    "resolve",
]

RULES_FILE = Path(__file__).with_name("profile_rules.yaml")
Level = Literal["site", "approval", "island", "utility", "device_type", "region"]
#: From the most specific to the least.
LEVELS: tuple[Level, ...] = ("site", "approval", "island", "utility", "device_type", "region")


class RulesError(ValueError):
    """A rules file that must not load: ``file``, ``where`` and ``reason``."""

    def __init__(self, file: str, where: str, reason: str) -> None:
        self.file, self.where, self.reason = file, where, reason
        super().__init__(f"{file}: {where}: {reason}" if where else f"{file}: {reason}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Match(_Strict):
    region: Literal["au", "us", "es"]
    site: int | None = Field(default=None, ge=1)
    island: str | None = None
    utility: str | None = None
    device_type: str | None = None


class _RuleIn(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    match: _Match
    profile: str | None
    why: str = Field(min_length=3)


class _IslandIn(_Strict):
    region: Literal["au", "us", "es"]
    lat: tuple[float, float]
    lon: tuple[float, float]


class _FileIn(_Strict):
    islands: dict[str, _IslandIn] = Field(default_factory=dict)
    utilities: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[_RuleIn]


@dataclass(frozen=True, slots=True)
class Island:
    name: str
    region: str
    lat: tuple[float, float]
    lon: tuple[float, float]

    def holds(self, latitude: float, longitude: float) -> bool:
        return self.lat[0] <= latitude <= self.lat[1] and self.lon[0] <= longitude <= self.lon[1]


@dataclass(frozen=True, slots=True)
class AssignmentRule:
    """A rule as loaded; ``utility`` is the canonical operator name."""

    id: str
    region: str
    profile: str | None
    why: str
    site: int | None = None
    island: str | None = None
    utility: str | None = None
    device_type: str | None = None

    @property
    def level(self) -> Level:
        levels: tuple[Level, ...] = ("site", "island", "utility", "device_type")
        for level in levels:
            if getattr(self, level) is not None:
                return level
        return "region"

    def specificity(self) -> tuple[bool, bool, bool, bool]:
        """Compared as a tuple: site, island, utility, device type (a connection
        approval's profile ranks between site and island: :func:`resolve`)."""
        return (
            self.site is not None,
            self.island is not None,
            self.utility is not None,
            self.device_type is not None,
        )


@dataclass(frozen=True, slots=True)
class AssignmentRules:
    rules: tuple[AssignmentRule, ...]
    islands: tuple[Island, ...]
    #: normalised name or alias → canonical operator name
    utilities: Mapping[str, str]
    file: str = ""

    def utility(self, name: str | None) -> str | None:
        """The canonical name of a network operator as the registry records it (None:
        none recorded); an operator the rules do not know keeps its own name."""
        if name is None or not name.strip():
            return None
        return self.utilities.get(_norm(name), name.strip())


@dataclass(frozen=True, slots=True)
class SiteFacts:
    """What assignment needs of a site (the registry's, as its events carried them)."""

    site_id: int
    region: str
    utility: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """The profile a site (or one device type on it) gets, and why.

    ``profile`` None: unassigned (``reason`` says what would decide it). ``rule`` is the
    winning rule's id (``approval:<reference>`` for the connection approval's profile)."""

    site_id: int
    profile: str | None
    rule: str
    level: Level
    reason: str
    island: str | None = None
    utility: str | None = None


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("\u2019", "'")).strip().casefold()


def island_of(site: SiteFacts, islands: Sequence[Island]) -> str | None:
    """The island the site's coordinates fall on (None: no coordinates, or on none)."""
    if site.latitude is None or site.longitude is None:
        return None
    for island in islands:
        if island.region == site.region and island.holds(site.latitude, site.longitude):
            return island.name
    return None


def resolve(
    rules: AssignmentRules,
    site: SiteFacts,
    *,
    device_type: str | None = None,
    approval_profile: str | None = None,
    approval_reference: str | None = None,
) -> Assignment:
    """The site's profile by the most specific matching rule (see the module's order),
    with the reason naming that rule. ``approval_profile``: the profile the site's
    connection approval names (``approval_reference`` its reference), which only a site
    rule outranks. ``device_type``: resolve for one device profile (None: the site's)."""
    island = island_of(site, rules.islands)
    utility = rules.utility(site.utility)
    matching = [
        r
        for r in rules.rules
        if r.region == site.region
        and r.site in (None, site.site_id)
        and r.island in (None, island)
        and r.utility in (None, utility)
        and r.device_type in (None, device_type)
    ]
    best = max(matching, key=AssignmentRule.specificity, default=None)
    facts = _facts(utility, island)
    if approval_profile is not None and (best is None or best.site is None):
        ref = approval_reference or "on file"
        return Assignment(
            site.site_id,
            approval_profile,
            f"approval:{ref}",
            "approval",
            f"connection approval {ref} names {approval_profile}",
            island,
            utility,
        )
    if best is None:
        return Assignment(
            site.site_id, None, "none", "region", f"no rule for region {site.region}{facts}"
        )
    what = best.profile if best.profile is not None else "no profile"
    return Assignment(
        site.site_id,
        best.profile,
        best.id,
        best.level,
        f"rule {best.id} ({best.level}{facts}): {what}: {best.why}",
        island,
        utility,
    )


def _facts(utility: str | None, island: str | None) -> str:
    parts = [f"utility {utility}" if utility else "no utility recorded"]
    if island:
        parts.append(f"island {island}")
    return "; " + ", ".join(parts)


# ----- loading ------------------------------------------------------------------------------
def load_rules(
    path: Path | str = RULES_FILE, profiles: Mapping[str, GridCodeProfile] | None = None
) -> AssignmentRules:
    """The rules file, checked against the grid-code profiles (default: the built-in
    ones); :class:`RulesError` names the file, the rule and the reason."""
    path = Path(path)
    file = str(path)
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(file, "", f"cannot read: {exc}") from None
    try:
        parsed = _FileIn.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise RulesError(file, where, err["msg"]) from None
    known = profiles if profiles is not None else builtin_grid_codes()
    islands = _islands(file, parsed.islands)
    utilities = _utilities(file, parsed.utilities)
    rules: list[AssignmentRule] = []
    seen: dict[tuple[Any, ...], str] = {}
    for i, raw in enumerate(parsed.rules):
        where = f"rules[{i}] ({raw.id})"
        m = raw.match
        utility = None
        if m.utility is not None:
            utility = utilities.get(_norm(m.utility))
            if utility is None:
                raise RulesError(file, where, f"utility {m.utility!r} is not under utilities")
        if m.island is not None and m.island not in {x.name for x in islands}:
            raise RulesError(file, where, f"island {m.island!r} is not under islands")
        _check_profile(file, where, raw, known)
        rule = AssignmentRule(
            raw.id, m.region, raw.profile, raw.why, m.site, m.island, utility, m.device_type
        )
        key = (rule.region, rule.site, rule.island, rule.utility, rule.device_type)
        if key in seen:
            raise RulesError(file, where, f"the same match as rule {seen[key]}")
        if raw.id in seen.values():
            raise RulesError(file, where, "a second rule with this id")
        seen[key] = raw.id
        rules.append(rule)
    return AssignmentRules(tuple(rules), islands, utilities, file)


def _check_profile(
    file: str, where: str, raw: _RuleIn, known: Mapping[str, GridCodeProfile]
) -> None:
    if raw.profile is None:
        return
    profile = known.get(raw.profile)
    if profile is None:
        raise RulesError(file, where, f"unknown grid-code profile {raw.profile!r}")
    if profile.region != raw.match.region:
        raise RulesError(
            file, where, f"profile {raw.profile} is of region {profile.region}, not the rule's"
        )
    if profile.registration_only and raw.match.site is None:
        raise RulesError(
            file,
            where,
            f"profile {raw.profile} carries registration data: only a site rule or a"
            " connection approval may name it",
        )


def _islands(file: str, raw: Mapping[str, _IslandIn]) -> tuple[Island, ...]:
    out: list[Island] = []
    for name, box in raw.items():
        if box.lat[0] >= box.lat[1] or box.lon[0] >= box.lon[1]:
            raise RulesError(file, f"islands.{name}", "a box is [low, high] in lat and lon")
        island = Island(name, box.region, box.lat, box.lon)
        for other in out:
            if _overlap(island, other):
                raise RulesError(file, f"islands.{name}", f"its box overlaps {other.name}'s")
        out.append(island)
    return tuple(out)


def _overlap(a: Island, b: Island) -> bool:
    return (
        a.region == b.region
        and a.lat[0] <= b.lat[1]
        and b.lat[0] <= a.lat[1]
        and a.lon[0] <= b.lon[1]
        and b.lon[0] <= a.lon[1]
    )


def _utilities(file: str, raw: Mapping[str, list[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, aliases in raw.items():
        for alias in (name, *aliases):
            key = _norm(str(alias))
            if key in out and out[key] != name:
                raise RulesError(file, f"utilities.{name}", f"{alias!r} already names {out[key]}")
            out[key] = name
    return out


@functools.cache
def builtin_rules() -> AssignmentRules:
    """The rules shipped beside this module, checked against the built-in profiles."""
    return load_rules(RULES_FILE)
