"""What a staged rollout accepts (``RolloutIn``) and shows (``RolloutView``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.messages import GatewayId, ProfileRef

__all__ = [
    "ProfileContent",
    "RolloutActionIn",
    "RolloutGatewayView",
    "RolloutIn",
    "RolloutLogEntry",
    "RolloutSummary",
    "RolloutTarget",
    "RolloutView",
    "WaveView",
]

Reason = Field(min_length=1, max_length=1000, description="why (kept in the rollout's log)")
ProfileName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
#: Most gateways one rollout names explicitly (a region-wide one resolves more).
MAX_LISTED = 10_000


class RolloutTarget(BaseModel):
    """Which gateways of the URL's region: every criterion given narrows (none: the
    whole region); then only gateways with a device of a profile the content names."""

    model_config = ConfigDict(extra="forbid")

    gateways: list[GatewayId] | None = Field(
        default=None,
        max_length=MAX_LISTED,
        description="gateway ids, in order: the first ones form the canary",
    )
    sites: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        default=None, max_length=MAX_LISTED
    )
    utility: str | None = Field(
        default=None, min_length=1, max_length=120, description="network operator"
    )
    device_profiles: list[ProfileName] | None = Field(
        default=None, max_length=32, description="only devices of these profiles"
    )


class ProfileContent(BaseModel):
    """What a profile sets: settings by device profile name; ``unverified`` names the
    values whose published source is not verified (``device_profile.setting``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: dict[ProfileName, dict[str, Any]]
    unverified: tuple[str, ...] = ()


class RolloutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: ProfileRef
    settings: dict[ProfileName, dict[str, Any]] | None = Field(
        default=None,
        max_length=32,
        description="device profile name → setting → value (engineering units, curves as"
        " lists); applied to every device of that profile on each gateway, over the"
        " gateway's current settings. Omitted: the profile's own content",
    )
    target: RolloutTarget = Field(default_factory=RolloutTarget)
    canary: int = Field(default=1, ge=1, le=1000, description="gateways in the first wave")
    factor: float = Field(default=2.0, ge=1.0, le=100.0, description="growth of later waves")
    wave_sizes: list[Annotated[int, Field(ge=1, le=100_000)]] | None = Field(
        default=None,
        max_length=100,
        description="sizes of the waves after the canary (the last repeats); overrides factor",
    )
    failure_threshold: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="a wave whose share of failed or timed-out gateways passes this stops"
        " the rollout",
    )
    on_failure: Literal["pause", "abort"] = "abort"
    wave_timeout_s: float = Field(
        default=600.0, gt=0, le=7 * 86_400, description="a gateway silent this long failed"
    )
    override_unverified: bool = Field(
        default=False, description="roll out a profile holding unverified values anyway"
    )
    override_reason: str | None = Field(default=None, min_length=1, max_length=1000)
    reason: str = Reason

    @model_validator(mode="after")
    def _override_needs_reason(self) -> RolloutIn:
        if self.override_unverified and not self.override_reason:
            raise ValueError("override_unverified needs an override_reason (it is audited)")
        return self


class RolloutActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Reason


class RollbackView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="pending, applied, failed or skipped")
    version: int | None
    detail: str


class RolloutGatewayView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gateway_id: str
    wave: int
    status: str = Field(
        description="waiting, pending, applied, failed, timed_out, superseded (a newer"
        " version was reported first), deferred (held: a technician is on site; pushed once"
        " released) or skipped (changed by someone else since the rollout was created, or"
        " refused before signing: see detail)"
    )
    base_version: int | None = Field(description="its version when the rollout was created")
    version: int | None = Field(description="the version the rollout signed for it")
    pushed_at: datetime | None
    detail: str
    rollback: RollbackView | None


class WaveView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wave: int
    size: int
    counts: dict[str, int] = Field(description="gateways by status")
    failed: int = Field(description="failed or timed out")
    counted: int = Field(description="reached and not deferred: what the rate divides by")


class RolloutSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    region: str
    state: str = Field(
        description="running, paused, aborted, completed or rolled_back (see detail for why)"
    )
    detail: str
    profile: dict[str, Any]
    reason: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    current_wave: int
    gateways: int


class RolloutLogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime
    actor: str
    action: str
    reason: str
    outcome: str
    detail: dict[str, Any]


class RolloutView(RolloutSummary):
    settings: dict[str, dict[str, Any]]
    target: dict[str, Any]
    waves: list[WaveView]
    failure_threshold: float
    on_failure: str
    wave_timeout_s: float
    override_unverified: bool
    override_reason: str | None
    unverified: list[str]
    accepted_through: int
    gateway_steps: list[RolloutGatewayView]
    log: list[RolloutLogEntry]
