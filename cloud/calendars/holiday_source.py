"""The one adapter of the ``holidays`` package: a jurisdiction's public holidays of one
year as plain ``{date: name}``."""

from __future__ import annotations

from datetime import date

import holidays


def public_holidays(
    country: str, subdivision: str | None, year: int, *, language: str
) -> dict[date, str]:
    """The package's ``public`` holidays of ``country`` (ISO 3166-1 alpha-2) and its
    ``subdivision`` (the package's code, e.g. ``NSW``; ``None``: national only) in
    ``year``, named in ``language``. Several on one day come joined by ``"; "``."""
    found = holidays.country_holidays(
        country, subdiv=subdivision, years=year, language=language, categories=("public",)
    )
    return {day: str(name) for day, name in found.items()}
