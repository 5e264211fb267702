"""The skills and licence kinds an employee record may name (``catalogue.yaml``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

CATALOGUE_FILE = Path(__file__).resolve().parent / "catalogue.yaml"
SKILL_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
LICENCE_KIND_PATTERN = r"^[a-z]{2}-[a-z0-9-]{1,40}$"

Description = Annotated[str, Field(min_length=1, max_length=200)]


class LicenceKind(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: Description
    country: str = Field(pattern=r"^[A-Z]{2}$")
    scope: Literal["subdivision", "country", "any"]

    def refusal(self, jurisdiction: str) -> str | None:
        """Why ``jurisdiction`` cannot be where a licence of this kind was issued, or None."""
        country, _, subdivision = jurisdiction.partition("-")
        if country != self.country:
            return f"is issued in {self.country}, not {country}"
        if self.scope == "subdivision" and not subdivision:
            return f"is issued by a subdivision of {self.country} (e.g. {self.country}-XX)"
        if self.scope == "country" and subdivision:
            return f"is issued for all of {self.country}"
        return None


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    skills: dict[Annotated[str, Field(pattern=SKILL_PATTERN)], Description]
    licences: dict[Annotated[str, Field(pattern=LICENCE_KIND_PATTERN)], LicenceKind]


@cache
def builtin_catalogue() -> Catalogue:
    """The shipped catalogue (read once)."""
    return Catalogue.model_validate(yaml.safe_load(CATALOGUE_FILE.read_text("utf-8")))
