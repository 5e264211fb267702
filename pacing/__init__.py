"""How fast to retry and how fast to send: one back-off policy, one reconnect policy and
one token bucket.

Pure and dependency-free (no project imports, no I/O), so the edge agent, the
simulators, the cloud and the composition root share one implementation of each.
"""

from pacing.backoff import Backoff, Jitter
from pacing.reconnect import RECONNECT_MAX_S, RECONNECT_WINDOW_S, Reconnect
from pacing.token_bucket import TokenBucket

__all__ = [
    "RECONNECT_MAX_S",
    "RECONNECT_WINDOW_S",
    "Backoff",
    "Jitter",
    "Reconnect",
    "TokenBucket",
]
