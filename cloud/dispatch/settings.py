"""The dispatch service's settings (prefix ``POTR_``): where work-order photos (and the
customers' signature images) are kept, and how large one may be."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cloud.dispatch.photos import DEFAULT_MAX_BYTES
from cloud.settings import DeploymentSettings

__all__ = ["DispatchSettings"]

#: No photo may be larger than this, whatever is configured: the API streams a photo's
#: body into memory before it is checked and stored.
MAX_PHOTO_BYTES_LIMIT = 50 * 1024 * 1024


class DispatchSettings(DeploymentSettings):
    """``dispatch_photo_dir``: the root of the filesystem photo storage (created on the
    first photo); ``dispatch_photo_max_bytes``: the largest photo accepted (413 above)."""

    dispatch_photo_dir: Path = Path("/var/lib/potr/dispatch-photos")
    dispatch_photo_max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES, ge=1024, le=MAX_PHOTO_BYTES_LIMIT
    )
