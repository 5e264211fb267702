"""Pure rules of the config service: command status, config reports, versions, documents.

No I/O and no clock: ``now`` is passed in. The service applies what these functions
decide inside its transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

__all__ = [
    "FINAL_STATUSES",
    "GATEWAY_COMMANDS",
    "CommandTransition",
    "HoldChange",
    "RollbackError",
    "command_transition",
    "config_report_changed",
    "device_status",
    "hold_change",
    "next_version",
    "overdue_before",
    "rollback_target",
    "shown_command_status",
    "shown_config_status",
]

CommandStatus = Literal["pending", "accepted", "done", "failed", "rejected", "expired"]
AckStatus = Literal["accepted", "rejected", "done", "failed", "expired"]
ClosedBy = Literal["gateway", "cloud"]

FINAL_STATUSES: frozenset[str] = frozenset({"done", "failed", "rejected", "expired"})
#: Commands addressed to the gateway itself (``device: null``); they take no arguments.
GATEWAY_COMMANDS: frozenset[str] = frozenset({"ping", "rescan"})
#: The replay guard's refusal of a second delivery of a command it already handled.
_REPLAYED = "replayed"


@dataclass(frozen=True, slots=True)
class CommandTransition:
    status: CommandStatus
    #: True when the new status is final (an event and an audit row follow).
    final: bool


def command_transition(
    status: str, closed_by: str | None, ack: AckStatus, detail: str
) -> CommandTransition | None:
    """The status a command moves to on an ack, or None when the ack changes nothing.

    * ``rejected: replayed …`` answers a *second* delivery of the same command (a QoS 1
      redelivery or a republish): the first delivery's ack is the answer, so it is ignored.
    * A final status set by the gateway never changes.
    * ``expired`` set by the cloud (timeout) is a guess: a late ``done``/``failed``/
      ``rejected`` from the gateway is the truth and replaces it.
    * ``accepted`` only moves a pending command.
    """
    if ack == "rejected" and detail.startswith(_REPLAYED):
        return None
    if status in FINAL_STATUSES:
        corrects_timeout = status == "expired" and closed_by == "cloud"
        if not corrects_timeout or ack in ("accepted", "expired"):
            return None
    if ack == "accepted":
        return CommandTransition("accepted", False) if status == "pending" else None
    return CommandTransition(ack, True)


def overdue_before(now: datetime, grace_s: float) -> datetime:
    """Commands whose ``expires_at`` is before this and have no final ack are expired."""
    return now - timedelta(seconds=grace_s)


def config_report_changed(
    previous: tuple[int | None, str, Sequence[str]] | None,
    version: int | None,
    status: str,
    drift: Iterable[str],
) -> bool:
    """True when a report is news: applied/failed/drifted with a different version or
    status than ``previous`` (version, status, drift), or a different drift set."""
    if status not in ("applied", "failed", "drifted"):
        return False
    if previous is None:
        return True
    prev_version, prev_status, prev_drift = previous
    if prev_version != version or prev_status != status:
        return True
    return status == "drifted" and sorted(prev_drift) != sorted(drift)


def device_status(
    reported_status: str | None,
    reported_version: int | None,
    desired_version: int | None,
    *,
    held: bool = False,
) -> str:
    """A device's status as shown: ``pending`` until it reports the desired version
    (``held`` while that version waits for a technician to leave the site)."""
    if desired_version is not None and (
        reported_version is None or reported_version < desired_version
    ):
        return "held" if held else "pending"
    return reported_status or "pending"


# -- holds (a technician on site: issue 17) ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class HoldChange:
    """What one work order's event changes: the gateways it starts holding and those it
    stops holding (which stay held while another work order holds them)."""

    hold: frozenset[str]
    release: frozenset[str]


def hold_change(on_site: bool, holding: Iterable[str], gateway_ids: Iterable[str]) -> HoldChange:
    """The newest event of a work order decides: on site, it holds exactly the gateways
    the event lists (the site's gateways as dispatch knows them now); off site, none."""
    held = frozenset(holding)
    wanted = frozenset(gateway_ids) if on_site else frozenset()
    return HoldChange(hold=wanted - held, release=held - wanted)


def shown_command_status(status: str, published: bool, held_by: Sequence[int]) -> str:
    """A command's status as shown: ``held`` while it waits unpublished for its gateway's
    holds to lift; the stored status (``pending`` …) otherwise. A command published before
    the technician arrived is not held: it is on its way already."""
    return "held" if status == "pending" and not published and held_by else status


def shown_config_status(published: bool, latest: bool, held_by: Sequence[int]) -> str:
    """A config version's publishing status: ``published``; ``superseded`` (a newer
    version came before it was published: only the latest is ever published); ``held``
    (waits for its gateway's holds to lift); else ``pending`` (the broker was away)."""
    if published:
        return "published"
    if not latest:
        return "superseded"
    return "held" if held_by else "pending"


def next_version(current: int | None) -> int:
    """Versions are monotonic per gateway, from 1."""
    return 1 if current is None else current + 1


class RollbackError(ValueError):
    """No earlier version to roll back to (or not the one asked for)."""


def rollback_target(versions: Sequence[int], to_version: int | None) -> int:
    """The version whose settings a rollback re-publishes: ``to_version``, else the one
    before the current (latest) version."""
    if not versions:
        raise RollbackError("the gateway has no config to roll back")
    current = max(versions)
    if to_version is None:
        earlier = [v for v in versions if v < current]
        if not earlier:
            raise RollbackError(f"version {current} is the only version: nothing to roll back to")
        return max(earlier)
    if to_version not in versions:
        raise RollbackError(f"version {to_version} does not exist (current is {current})")
    if to_version == current:
        raise RollbackError(f"version {to_version} is already the current version")
    return to_version
