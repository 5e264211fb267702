"""The door code: how a customer checks that the technician at the door is PoTR's.

While a job is on its way or on site (:data:`SHOWN_IN`), the customer's page and the
job's MOSIE's page show the same six digits; anyone else gets nothing. The code is
HMAC-SHA256 (RFC 4226's dynamic truncation, as TOTP) of the job's own random secret
(``dispatch.work_orders.door_secret``) over the visit, the assignee and the time step, so:

* it changes every :data:`STEP` (a photo of yesterday's screen proves nothing), with a
  new visit and with another assignee (a reassigned job's old MOSIE has a dead code);
* the server can show it to both parties at any time without storing a code — a hashed
  random code could not be shown twice — and one job's code says nothing of another's;
* it is never written anywhere: not in events, history, logs or the API's job record.

Pure: the service reads the secret within the caller's reach and asks.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud.dispatch.lifecycle import WorkOrderStatus

__all__ = ["DIGITS", "SHOWN_IN", "STEP", "DoorCode", "door_code"]

#: Long enough to walk to the door and compare, short enough that an old code is dead.
STEP = timedelta(minutes=2)
DIGITS = 6
#: The states in which the MOSIE is coming or at the door.
SHOWN_IN = frozenset({WorkOrderStatus.EN_ROUTE, WorkOrderStatus.ON_SITE})


@dataclass(frozen=True, slots=True)
class DoorCode:
    """``code`` (``DIGITS`` digits, zero-padded), valid until ``valid_until`` (UTC) for
    ``assignee``'s visit ``visit``. ``repr`` hides the code so no log can carry it."""

    code: str
    valid_until: datetime
    assignee: str
    visit: int

    def __repr__(self) -> str:
        return f"DoorCode(assignee={self.assignee!r}, visit={self.visit}, code=<hidden>)"


def door_code(secret: bytes, visit: int, assignee: str, at: datetime) -> DoorCode:
    """The code of ``at``'s step (``at`` timezone-aware) for ``assignee``'s visit."""
    if len(secret) < 16:
        raise ValueError("the door secret must be at least 16 bytes")
    step_s = int(STEP.total_seconds())
    counter = int(at.timestamp()) // step_s
    message = struct.pack(">QI", counter, visit) + assignee.encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    code = str(number % 10**DIGITS).zfill(DIGITS)
    until = datetime.fromtimestamp((counter + 1) * step_s, UTC)
    return DoorCode(code=code, valid_until=until, assignee=assignee, visit=visit)
