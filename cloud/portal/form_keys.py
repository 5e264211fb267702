"""Idempotent form posts for actions whose service takes no idempotency key (issue 18's
rollout actions): :meth:`FormKeys.once` runs an action at most once per (person, form
key).

The key's row is inserted in a transaction held open while the action runs (on the
service's own connections) and committed only when the action succeeded:

- a second post of the same form while the first runs waits on the row's unique index,
  then finds it committed and does nothing (a replay);
- an action the service refuses rolls the row back, so the same form may be sent again
  once the refusal is fixed (the service logs each refusal itself);
- the rare crash between the service's commit and this one leaves the key unrecorded:
  a retry then reaches the service again, whose state machine refuses what no longer
  applies (a second pause of a paused rollout) — a refusal page, never a second change.

``what`` names the action and its object: a key replayed against another action is
refused (:class:`FormKeyReused`), never taken as that action's replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from cloud.adapters.postgres import Connection, ConnectionPool

__all__ = ["FormKeyReused", "FormKeys"]

T = TypeVar("T")
#: How long a key is remembered (a rendered form is not kept open longer).
RETENTION = "7 days"


class FormKeyReused(Exception):
    """The form key was already used by this person for another action."""


class FormKeys:
    """The portal's record of done forms (``portal.form_keys``); thread-safe."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def once(self, subject: str, key: str, what: str, action: Callable[[], T]) -> T | None:
        """Run ``action`` unless ``subject`` already did with ``key`` (then None); its
        exceptions propagate and leave the key unused. ``action`` must not use this
        pool's connection (it gets its own)."""
        with self._pool.connection() as conn:
            conn.execute(f"DELETE FROM portal.form_keys WHERE at < now() - interval '{RETENTION}'")
            inserted = conn.execute(
                "INSERT INTO portal.form_keys (subject, key, what) VALUES (%s, %s, %s)"
                " ON CONFLICT (subject, key) DO NOTHING RETURNING key",
                (subject, key, what[:200]),
            ).fetchone()
            if inserted is None:
                row = conn.execute(
                    "SELECT what FROM portal.form_keys WHERE subject = %s AND key = %s",
                    (subject, key),
                ).fetchone()
                if row is not None and row[0] != what[:200]:
                    raise FormKeyReused(f"form key already used for {row[0]}")
                return None
            return action()
