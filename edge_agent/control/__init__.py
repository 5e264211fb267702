"""The control path on the gateway: signed commands and configs, applied one at a time.

:class:`ControlService` is the whole public surface; ``docs/control.md`` says what every
answer means. Modules: ``intake`` (the bounded queue), ``commands``, ``configs``,
``restore``, ``drift``, ``answers`` (acks and config states through the buffer),
``devices`` (device lookup and writers), ``stats`` (counters for ``/metrics``).
"""

from edge_agent.control.service import ControlService
from edge_agent.control.stats import ControlStats

__all__ = ["ControlService", "ControlStats"]
