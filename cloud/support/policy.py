"""The support policy as data (``data/policy.yaml``): SLA targets per region and
priority, and the reopen window. Read once per process by whoever builds the service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel

from cloud.support.lifecycle import Priority
from contracts.topics import Region

__all__ = ["POLICY_FILE", "RegionPolicy", "SupportPolicy", "Targets", "load_policy"]

POLICY_FILE = Path(__file__).parent / "data" / "policy.yaml"


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    first_response_h: int = Field(ge=1, le=2000)
    resolution_h: int = Field(ge=1, le=5000)

    @property
    def first_response(self) -> timedelta:
        return timedelta(hours=self.first_response_h)

    @property
    def resolution(self) -> timedelta:
        return timedelta(hours=self.resolution_h)


class RegionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reopen_days: int = Field(ge=0, le=365)
    targets: dict[Priority, Targets]

    @property
    def reopen_window(self) -> timedelta:
        return timedelta(days=self.reopen_days)


class SupportPolicy(RootModel[dict[Region, RegionPolicy]]):
    def of(self, region: Region) -> RegionPolicy:
        return self.root[region]


def load_policy(path: Path = POLICY_FILE) -> SupportPolicy:
    """The policy file, checked: every region and every priority present."""
    policy = SupportPolicy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    for region in Region:
        missing = set(Priority) - set(policy.of(region).targets)
        if missing:
            raise ValueError(f"{path}: {region.value} lacks targets for {sorted(missing)}")
    return policy
