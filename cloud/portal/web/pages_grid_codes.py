"""The grid-code profiles of a region, read-only (issue 18): operators and admins.

``/ui/{region}/grid-codes`` lists the region's profiles (standard, categories, parent,
and UNVERIFIED with the number of values whose source is not verified);
``/ui/{region}/grid-codes/{id}`` shows each value with its unit, source · clause and
confidence, the values not verified marked in words and a symbol (never colour alone);
``/ui/{region}/grid-codes/diff?a=…&b=…`` the keys whose value, unit or provenance differ
between two of the region's profiles.

The profiles are the shipped ones (:func:`device_profiles.builtin_grid_codes`, read once
per process); a profile of another region is not found under this region's URL, as
everything else regional.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_grid_code_pages`` and FastAPI resolves string annotations in the module's globals.

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from cloud.portal.web.formatting import Formats
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from device_profiles import GridCodeProfile
from device_profiles.grid_code import KEYS, ResolvedValue, diff_grid_codes

__all__ = ["ValueRow", "create_grid_code_pages", "value_row"]

_ID = r"^[a-z][a-z0-9.-]*$"
ProfileIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=_ID)]
ProfileIdQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=_ID)]


@dataclass(frozen=True)
class ValueRow:
    """One value as a page shows it: ``shown`` in the reader's number format with its
    unit(s); ``defined_in`` the profile whose file sets it (a parent's when inherited)."""

    key: str
    shown: str
    source: str
    clause: str
    confidence: str
    note: str
    description: str
    defined_in: str

    @property
    def verified(self) -> bool:
        return self.confidence == "verified"


def _unit(unit: str) -> str:
    if not unit:
        return ""
    return unit if unit.startswith("%") else f"\u00a0{unit}"


def shown(value: ResolvedValue, fmt: Formats) -> str:
    """A value with its unit(s): ``230 V``; a curve as its points ``(x; y)``."""
    if isinstance(value.value, tuple):
        xu, yu = value.unit if isinstance(value.unit, tuple) else (value.unit, "")
        return " · ".join(
            f"({fmt.decimal(x)}{_unit(xu)}; {fmt.decimal(y)}{_unit(yu)})" for x, y in value.value
        )
    unit = value.unit if isinstance(value.unit, str) else value.unit[1]
    return f"{fmt.decimal(value.value)}{_unit(unit)}"


def value_row(value: ResolvedValue, fmt: Formats) -> ValueRow:
    spec = KEYS.get(value.key)
    return ValueRow(
        key=value.key,
        shown=shown(value, fmt),
        source=value.provenance.source,
        clause=value.provenance.clause,
        confidence=value.provenance.confidence,
        note=value.note,
        description=spec.description if spec is not None else "",
        defined_in=FilePath(value.file).stem,
    )


def create_grid_code_pages(
    sessions: Sessions,
    renderer: Renderer,
    profiles: Callable[[], Mapping[str, GridCodeProfile]],
) -> APIRouter:
    """``profiles()``: every grid-code profile by id (the shipped ones in production)."""
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    def of_region(who: Viewer) -> list[GridCodeProfile]:
        return [p for p in profiles().values() if p.region == who.region.value]

    def one(who: Viewer, profile_id: str) -> GridCodeProfile:
        found = profiles().get(profile_id)
        if found is None or found.region != who.region.value:
            raise PageRefused(404, "no such grid-code profile in the region")
        return found

    @router.get("/grid-codes", operation_id="ui.grid_codes")
    async def listing(
        request: Request, who: Annotated[Viewer, viewer("ui.grid_codes")]
    ) -> Response:
        return renderer.page(
            request, "grid_codes.html", language=who.language, viewer=who,
            profiles=of_region(who),
        )  # fmt: skip

    @router.get("/grid-codes/diff", operation_id="ui.grid_codes.diff")
    async def diff(
        request: Request,
        who: Annotated[Viewer, viewer("ui.grid_codes.diff")],
        a: ProfileIdQuery,
        b: ProfileIdQuery,
    ) -> Response:
        first, second = one(who, a), one(who, b)
        rows = [
            (
                d.key,
                value_row(d.a, who.formats) if d.a is not None else None,
                value_row(d.b, who.formats) if d.b is not None else None,
            )
            for d in diff_grid_codes(first, second)
        ]
        return renderer.page(
            request, "grid_code_diff.html", language=who.language, viewer=who,
            a=first, b=second, rows=rows, profiles=of_region(who),
        )  # fmt: skip

    @router.get("/grid-codes/{profile_id}", operation_id="ui.grid_code")
    async def profile(
        request: Request, profile_id: ProfileIdPath, who: Annotated[Viewer, viewer("ui.grid_code")]
    ) -> Response:
        found = one(who, profile_id)
        rows = [value_row(found.values[k], who.formats) for k in sorted(found.values)]
        return renderer.page(
            request, "grid_code.html", language=who.language, viewer=who, profile=found,
            rows=rows, unverified=[r for r in rows if not r.verified],
        )  # fmt: skip

    return router
