"""Dispatch: work orders for field technicians (MOSIEs), issue 17.

The published interface: :class:`DispatchService` (work orders through the lifecycle,
what a technician records on site, the board, a technician's jobs, performance), its
records and refusals, the photo storage, and :func:`event_subscriptions` for the
composition root. The pure core — :mod:`cloud.dispatch.lifecycle`,
:mod:`cloud.dispatch.checklists`, :mod:`cloud.dispatch.assignment` — is public too.
"""

from cloud.dispatch.api import UPLOAD_PATH, create_router
from cloud.dispatch.errors import (
    AppointmentRefused,
    ConflictError,
    DispatchError,
    LocationRefused,
    NotFoundError,
    RefusedError,
    TickRefused,
    TransitionRefused,
)
from cloud.dispatch.flow import FlowSettings
from cloud.dispatch.handlers import event_subscriptions, run_dispatch_sweeps
from cloud.dispatch.models import (
    HistoryEntry,
    KnownSite,
    LocationRecorded,
    Note,
    PartStock,
    PartUse,
    Performance,
    Photo,
    Signature,
    Tick,
    WorkOrder,
)
from cloud.dispatch.photos import (
    DEFAULT_MAX_BYTES,
    FilesystemPhotoStorage,
    PhotoMissing,
    PhotoStorage,
    check_upload,
)
from cloud.dispatch.repository import BOARD_CHANNEL
from cloud.dispatch.service import (
    SCHEMA,
    Candidate,
    DispatchService,
    DutyFacts,
    StaffDuty,
    SweepResult,
)
from cloud.dispatch.settings import DispatchSettings

__all__ = [
    "BOARD_CHANNEL",
    "DEFAULT_MAX_BYTES",
    "SCHEMA",
    "UPLOAD_PATH",
    "AppointmentRefused",
    "Candidate",
    "ConflictError",
    "DispatchError",
    "DispatchService",
    "DispatchSettings",
    "DutyFacts",
    "FilesystemPhotoStorage",
    "FlowSettings",
    "HistoryEntry",
    "KnownSite",
    "LocationRecorded",
    "LocationRefused",
    "NotFoundError",
    "Note",
    "PartStock",
    "PartUse",
    "Performance",
    "Photo",
    "PhotoMissing",
    "PhotoStorage",
    "RefusedError",
    "Signature",
    "StaffDuty",
    "SweepResult",
    "Tick",
    "TickRefused",
    "TransitionRefused",
    "WorkOrder",
    "check_upload",
    "create_router",
    "event_subscriptions",
    "run_dispatch_sweeps",
]
