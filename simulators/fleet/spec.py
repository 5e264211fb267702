"""What a virtual fleet is: its size, cadence, clock, region mix and outage windows.

Pure data plus the deterministic plan of each gateway (id, region, seed, phase, whether
it fails to apply control writes). Times named ``*_s`` without ``sim`` are real
(wall-clock) seconds; ``cadence_s`` is simulated seconds between two telemetry batches of
one gateway (field: 300 s), compressed by ``speed`` (simulated seconds per real second).

Control (``cmd``/``config``): ``trusted_key_files`` are the public keys (PEM) the
virtual gateways trust; none = every document is refused as untrusted. Failure
injection: the gateways named in ``fail_gateways`` and a ``fail_fraction`` of the rest,
chosen by a stable hash of ``seed`` and the gateway id (:func:`fails_by_seed`), fail
every config and device command they accept.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.signing import SignatureError, TrustedKeys
from contracts.topics import GATEWAY_ID_RE, Region
from pacing import RECONNECT_MAX_S, RECONNECT_WINDOW_S

Protocol = Literal["5", "3.1.1"]


class Outage(BaseModel):
    """A window in which a share of the gateways loses its link, then backfills.

    ``start_s`` is real seconds after the fleet started publishing; affected gateways
    drop their connection (the broker publishes their will), keep producing batches
    into their buffer, and resend them oldest first once the window ends.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    fraction: float = Field(default=1.0, gt=0, le=1)

    @classmethod
    def parse(cls, text: str) -> Outage:
        """``START:DURATION[:FRACTION]`` in real seconds, e.g. ``10:20:0.5``."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"outage {text!r}: want START:DURATION[:FRACTION]")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"outage {text!r}: numbers expected") from None
        return cls(
            start_s=values[0], duration_s=values[1], fraction=values[2] if len(values) > 2 else 1.0
        )

    def affects(self, index: int, count: int) -> bool:
        """True for the first ``fraction`` of the fleet (by gateway index)."""
        return index < round(self.fraction * count)

    def active(self, elapsed_s: float) -> bool:
        return self.start_s <= elapsed_s < self.start_s + self.duration_s


def parse_region_mix(text: str) -> dict[Region, float]:
    """``au=0.5,us=0.3,es=0.2`` (weights, normalised later); a bare ``au`` means all au."""
    mix: dict[Region, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = item.partition("=")
        try:
            region = Region(name.strip())
        except ValueError:
            raise ValueError(f"region mix {text!r}: unknown region {name!r}") from None
        try:
            mix[region] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"region mix {text!r}: bad weight {weight!r}") from None
    if not mix:
        raise ValueError("region mix is empty")
    return mix


class MqttTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Protocol = "5"
    #: Sent with every gateway's username (its id); None for anonymous brokers.
    password: str | None = None
    keepalive_s: int = Field(default=60, ge=5)
    #: MQTT 5 session expiry; 0 = a clean session on every connect.
    session_expiry_s: int = Field(default=3600, ge=0)


class FleetSpec(BaseModel):
    """A virtual fleet; see the module docstring for units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1, le=100_000)
    id_prefix: str = "vgw"
    regions: dict[Region, float] = Field(default_factory=lambda: {Region.AU: 1.0})
    cadence_s: float = Field(default=300.0, gt=0, description="simulated s between batches")
    samples_per_batch: int = Field(default=1, ge=1, le=600)
    speed: float = Field(default=1.0, gt=0, description="simulated s per real s")
    duration_s: float | None = Field(default=None, gt=0, description="real s of publishing")
    sim_start: AwareDatetime | None = Field(
        default=None, description="simulated time of the first sample; None = ends near now"
    )
    pv_capacity_w: tuple[float, float] = (3000.0, 10000.0)
    mqtt: MqttTarget = Field(default_factory=MqttTarget)
    #: Keep every batch until ``stored`` covers it, resending after ``stored_timeout_s``;
    #: False (no ingest running) forgets a batch at its PUBACK.
    expect_stored: bool = True
    stored_timeout_s: float = Field(default=30.0, gt=0)
    max_inflight: int = Field(default=10, ge=1, le=1000)
    #: Token bucket per gateway for sends (backfill pacing), messages per real second.
    send_rate: float = Field(default=20.0, gt=0)
    outages: tuple[Outage, ...] = ()
    workers: int = Field(default=2, ge=1, le=64)
    #: New connections per real second, over the whole fleet (a reconnect storm is a test).
    connect_rate: float = Field(default=1000.0, gt=0)
    #: The agent's reconnect policy (``pacing.Reconnect``) and its defaults: the first
    #: retry after a lost link waits a random time below ``reconnect_min_s``, later ones
    #: ``reconnect_min_s`` doubling up to ``reconnect_max_s``.
    reconnect_min_s: float = Field(default=RECONNECT_WINDOW_S, gt=0)
    reconnect_max_s: float = Field(default=RECONNECT_MAX_S, gt=0)
    #: After ``duration_s``: how long to wait for PUBACKs (and ``stored``) of what was sent.
    drain_timeout_s: float = Field(default=30.0, ge=0)
    progress_interval_s: float = Field(default=0.5, gt=0)
    #: Public keys (Ed25519, PEM) whose signatures on ``cmd``/``config`` are trusted.
    trusted_key_files: tuple[Path, ...] = ()
    #: Gateways (ids) that fail every config and device command they accept.
    fail_gateways: tuple[str, ...] = ()
    #: Share of the fleet that fails likewise, chosen by ``seed`` (stable across runs).
    fail_fraction: float = Field(default=0.0, ge=0, le=1)
    #: Seed of the fleet's deterministic choices (which gateways fail).
    seed: int = 0

    @field_validator("id_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not GATEWAY_ID_RE.match(f"{v}-00000"):
            raise ValueError(f"id prefix {v!r} does not make valid gateway ids")
        return v

    @field_validator("regions")
    @classmethod
    def _weights(cls, v: dict[Region, float]) -> dict[Region, float]:
        if not v or any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("region weights must be >= 0 with a positive sum")
        return v

    @field_validator("fail_gateways")
    @classmethod
    def _fail_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [g for g in v if not GATEWAY_ID_RE.match(g)]
        if bad:
            raise ValueError(f"fail_gateways: {bad[0]!r} is not a gateway id")
        return v

    @field_validator("trusted_key_files")
    @classmethod
    def _keys(cls, v: tuple[Path, ...]) -> tuple[Path, ...]:
        for path in v:
            try:
                TrustedKeys.from_pems([path.read_bytes()])
            except OSError as exc:
                raise ValueError(f"trusted key {path}: {exc.strerror or exc}") from None
            except (SignatureError, ValueError, TypeError) as exc:
                raise ValueError(
                    f"trusted key {path}: not an Ed25519 public key PEM: {exc}"
                ) from None
        return v

    def trusted_keys(self) -> TrustedKeys:
        """The trusted set, read from ``trusted_key_files`` (empty: nothing is trusted)."""
        return TrustedKeys.from_pems(p.read_bytes() for p in self.trusted_key_files)

    def fails(self, gateway: str) -> bool:
        """Whether ``gateway`` fails every config and device command it accepts."""
        return gateway in self.fail_gateways or fails_by_seed(
            self.seed, gateway, self.fail_fraction
        )

    @model_validator(mode="after")
    def _capacity(self) -> FleetSpec:
        lo, hi = self.pv_capacity_w
        if not 0 < lo <= hi:
            raise ValueError("pv_capacity_w must be (low, high) with 0 < low <= high")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self

    @property
    def batch_interval_s(self) -> float:
        """Real seconds between two batches of one gateway."""
        return self.cadence_s / self.speed

    @property
    def poll_interval_s(self) -> float:
        """Simulated seconds between two samples of one device."""
        return self.cadence_s / self.samples_per_batch

    @property
    def nominal_rate(self) -> float:
        """Telemetry messages per real second the whole fleet should sustain."""
        return self.count / self.batch_interval_s


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    index: int
    gateway_id: str
    region: Region
    seed: int
    pv_capacity_w: float
    #: Real seconds after the fleet start of this gateway's first sample (spreads load).
    phase_s: float
    #: Fails every config and device command it accepts (failure injection).
    fails: bool = False


def fails_by_seed(seed: int, gateway: str, fraction: float) -> bool:
    """A stable choice of ``fraction`` of all gateway ids: SHA-256 of ``seed`` and the
    id as a number in [0, 1) below ``fraction`` (same seed, same gateways, every run)."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{gateway}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def gateway_id(prefix: str, index: int) -> str:
    return f"{prefix}-{index:05d}"


def assign_regions(mix: dict[Region, float], count: int) -> list[Region]:
    """Deterministic, evenly interleaved regions whose shares follow ``mix``."""
    total = sum(mix.values())
    regions = sorted(r for r, w in mix.items() if w > 0)
    credit = dict.fromkeys(regions, 0.0)
    out: list[Region] = []
    for _ in range(count):
        for r in regions:
            credit[r] += mix[r] / total
        pick = max(regions, key=lambda r: credit[r])
        credit[pick] -= 1.0
        out.append(pick)
    return out


def plan(spec: FleetSpec) -> list[GatewayPlan]:
    """Every gateway of the fleet, in index order."""
    regions = assign_regions(spec.regions, spec.count)
    lo, hi = spec.pv_capacity_w
    out = []
    for i in range(spec.count):
        gid = gateway_id(spec.id_prefix, i)
        seed = zlib.crc32(gid.encode())
        capacity = lo + (hi - lo) * ((seed % 1000) / 999)
        phase = spec.batch_interval_s * (i / spec.count)
        out.append(
            GatewayPlan(i, gid, regions[i], seed, round(capacity, -2), phase, spec.fails(gid))
        )
    return out


def failing_gateways(spec: FleetSpec) -> list[str]:
    """The ids of the fleet's gateways that fail control writes, in index order."""
    return [p.gateway_id for p in plan(spec) if p.fails]


def default_sim_start(spec: FleetSpec, now: datetime) -> datetime:
    """The simulated start that makes the last sample land near ``now`` (ingest
    quarantines readings more than 5 minutes in the future); a week back when open-ended."""
    sim_span = (spec.duration_s or 7 * 86400 / spec.speed) * spec.speed
    return now - timedelta(seconds=sim_span + spec.cadence_s)
