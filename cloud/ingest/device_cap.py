"""How many new devices a gateway may add (issue 12): a forged batch once named 500
devices and got 500 keys. Each gateway may get at most ``cap`` new device keys per UTC
day, births and readings together; the devices a birth announces come first, then by
local id, so what is admitted does not depend on message order within a batch. Pure;
the pipeline counts the day's keys and allocates under a per-gateway lock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping

__all__ = ["admit_new_devices", "birth_refusal", "readings_refusal"]

Pair = tuple[str, str]  # (gateway id, local device id)


def admit_new_devices(
    new: Collection[Pair], announced: Collection[Pair], added_today: Mapping[str, int], cap: int
) -> tuple[set[Pair], set[Pair]]:
    """Split devices without a key into (admitted, refused): per gateway, at most
    ``cap`` minus the keys it got today, announced ones first, then by local id."""
    by_gateway: dict[str, list[Pair]] = defaultdict(list)
    for pair in new:
        by_gateway[pair[0]].append(pair)
    admitted: set[Pair] = set()
    refused: set[Pair] = set()
    for gateway, pairs in by_gateway.items():
        room = max(0, cap - added_today.get(gateway, 0))
        pairs.sort(key=lambda p: (p not in announced, p[1]))
        admitted.update(pairs[:room])
        refused.update(pairs[room:])
    return admitted, refused


def readings_refusal(gateway: str, refused: list[str], total: int, cap: int) -> str:
    """Dead-letter reason for the readings of ``refused`` (local ids, one per reading)."""
    return (
        f"{len(refused)} of {total} readings name devices over gateway {gateway!r}'s limit "
        f"of {cap} new devices per UTC day (first: device {refused[0]!r})"
    )


def birth_refusal(gateway: str, refused: list[str], total: int, cap: int) -> str:
    """Dead-letter reason for a birth some of whose devices got no key."""
    return (
        f"{len(refused)} of {total} devices of the birth are over gateway {gateway!r}'s "
        f"limit of {cap} new devices per UTC day and were left out of its gateway.birth "
        f"(first: device {refused[0]!r})"
    )
