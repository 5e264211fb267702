"""The dispatch service's refusals; ``str()`` is fit for an API answer.

:class:`NotFoundError` 404, :class:`ConflictError` 409 and :class:`RefusedError` 422 as
the other services'; :class:`TransitionRefused` and :class:`TickRefused` carry the pure
core's code, its English reason and the reason's parameters (:attr:`invalid`: the
request itself lacks something, 422; else the work order's state does not allow it, 409).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from cloud.dispatch.checklists import TickRefusal, TickRefusalCode
from cloud.dispatch.lifecycle import Refusal, RefusalCode

__all__ = [
    "AppointmentCode",
    "AppointmentRefused",
    "ConflictError",
    "DispatchError",
    "LocationCode",
    "LocationRefused",
    "NotFoundError",
    "RefusedError",
    "TickRefused",
    "TransitionRefused",
]

#: Lifecycle refusals that are the request's fault (answered 422, not 409).
_INVALID_TRANSITIONS = frozenset({RefusalCode.REASON_REQUIRED, RefusalCode.ASSIGNEE_REQUIRED})
_INVALID_TICKS = frozenset({TickRefusalCode.UNKNOWN_TASK, TickRefusalCode.PHOTO_REQUIRED})


class DispatchError(Exception):
    """Base of the dispatch service's refusals."""


class NotFoundError(DispatchError):
    """Unknown work order, site or part — or one outside the caller's reach (a MOSIE's
    reach is their own jobs), which reads the same so ids cannot be probed."""


class ConflictError(DispatchError):
    """The request does not fit the current state: a stale ``expected_version``, a job
    not on site, a part short in stock."""


class RefusedError(DispatchError):
    """A value the request may not carry: ``field``, ``limit`` and ``reason`` say why
    (an idempotency key reused with another request, a photo of the wrong type or too
    large, a field out of its bounds)."""

    def __init__(self, field: str, limit: str, reason: str) -> None:
        self.field, self.limit, self.reason = field, limit, reason
        super().__init__(f"{field}: {reason}" + (f" (limit {limit})" if limit else ""))


class TransitionRefused(DispatchError):
    """The lifecycle refused the action (:class:`~cloud.dispatch.lifecycle.Refusal`)."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        self.code: RefusalCode = refusal.code
        self.reason = refusal.reason
        self.params: Mapping[str, str] = refusal.params
        super().__init__(str(refusal))

    @property
    def invalid(self) -> bool:
        return self.code in _INVALID_TRANSITIONS


class TickRefused(DispatchError):
    """The checklist refused the tick (:class:`~cloud.dispatch.checklists.TickRefusal`)."""

    def __init__(self, refusal: TickRefusal) -> None:
        self.refusal = refusal
        self.code: TickRefusalCode = refusal.code
        self.reason = refusal.reason
        self.params: Mapping[str, str] = refusal.params
        super().__init__(str(refusal))

    @property
    def invalid(self) -> bool:
        return self.code in _INVALID_TICKS


class AppointmentRefused(DispatchError):
    """A confirmation refused (:class:`~cloud.dispatch.appointments.ConfirmRefusal`, or
    ``no_offer`` / ``not_bookable``): 422 for a window that was not offered (the request
    is wrong), 409 for an expired offer, a window too close to its start, no live offer
    or a job past arranging a visit (the state is)."""

    def __init__(self, code: str, reason: str) -> None:
        self.code = AppointmentCode(code)
        self.reason = reason
        self.params: Mapping[str, str] = {}
        super().__init__(f"{code}: {reason}")

    @property
    def invalid(self) -> bool:
        return self.code is AppointmentCode.NOT_OFFERED


class AppointmentCode(StrEnum):
    NOT_OFFERED = "not_offered"
    OFFER_EXPIRED = "offer_expired"
    TOO_LATE = "too_late"
    NO_OFFER = "no_offer"
    NOT_BOOKABLE = "not_bookable"


class LocationCode(StrEnum):
    NOTICE_NOT_ACKNOWLEDGED = "notice_not_acknowledged"
    OFF_DUTY = "off_duty"


class LocationRefused(DispatchError):
    """A location fix not stored (nothing of it is kept): the employee has not
    acknowledged the location notice's current version (``notice_not_acknowledged``), or
    is off duty — outside their working hours and on no accepted, en route or on-site
    job (``off_duty``). Both 409: the employee's standing forbids it, not the request."""

    invalid = False

    def __init__(self, code: LocationCode, reason: str) -> None:
        self.code = code
        self.reason = reason
        self.params: Mapping[str, str] = {}
        super().__init__(f"{code.value}: {reason}")
