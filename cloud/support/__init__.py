"""Customer support (``business.md`` §5): tickets (complaint, question, change request,
fault report) with their states, history, links and SLA clocks on each region's business
calendar; staff queues per region. It asks other services by events only
(:mod:`cloud.events.support`): dispatch for a fault report's work order, customers for an
approved plan change, notify for the outcome letter.

Published interface: :class:`SupportService`, :class:`Actor`, :class:`SiteFact`, the
models, the errors, :func:`create_router` (REST), :func:`event_subscriptions`, and the
pure clock (:mod:`cloud.support.sla`). Other services import nothing else from here.
"""

from cloud.support.api import create_router
from cloud.support.errors import ConflictError, InvalidError, NotFoundError, SupportError
from cloud.support.handlers import event_subscriptions, run_support_sweeps
from cloud.support.lifecycle import Kind, Priority, State
from cloud.support.metrics import Attainment
from cloud.support.models import (
    Change,
    Link,
    LinkKind,
    QueueFilter,
    Sla,
    StaffMove,
    Ticket,
    TicketDetail,
    TicketEvent,
    TicketIn,
    TicketRate,
)
from cloud.support.policy import SupportPolicy, load_policy
from cloud.support.service import (
    SCHEMA,
    Actor,
    CustomerCounts,
    SiteFact,
    SiteFacts,
    SupportService,
)

__all__ = [
    "SCHEMA",
    "Actor",
    "Attainment",
    "Change",
    "ConflictError",
    "CustomerCounts",
    "InvalidError",
    "Kind",
    "Link",
    "LinkKind",
    "NotFoundError",
    "Priority",
    "QueueFilter",
    "SiteFact",
    "SiteFacts",
    "Sla",
    "StaffMove",
    "State",
    "SupportError",
    "SupportPolicy",
    "SupportService",
    "Ticket",
    "TicketDetail",
    "TicketEvent",
    "TicketIn",
    "TicketRate",
    "create_router",
    "event_subscriptions",
    "load_policy",
    "run_support_sweeps",
]
