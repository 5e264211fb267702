"""Putting a device's previous setting values back after a failed config."""

from __future__ import annotations

from collections.abc import Mapping

from edge_agent.device_writer import DeviceWriter, SettingValue, WriteFailed

__all__ = ["restore_previous"]


async def restore_previous(
    writer: DeviceWriter, previous: Mapping[str, SettingValue | None]
) -> str:
    """Re-write the ``previous`` values (point → value; None: unknown, left alone) the
    device no longer holds and read them back; the sentence for the config's detail."""
    known = {ref: value for ref, value in previous.items() if value is not None}
    try:
        # Re-write only what the device no longer holds: a write the device refused
        # left its point unchanged, and writing it again would only fail again.
        changed = {}
        for ref, value in known.items():
            try:
                await writer.check_setting(ref, value)
            except WriteFailed as exc:
                if not exc.mismatch:
                    raise
                changed[ref] = value
        if changed:
            await writer.write_settings(changed)
            for ref, value in changed.items():
                await writer.check_setting(ref, value)
    except WriteFailed as exc:
        return f"restore of previous values FAILED: {exc}"
    return f"previous values restored ({len(changed)} of {len(known)} re-written)"
