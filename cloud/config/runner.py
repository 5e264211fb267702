"""The config service's background loops: republish, expire, re-sign, advance rollouts.

A process builds the service and runs these loops with :mod:`cloud.bootstrap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial

from cloud.adapters.postgres import DatabaseError
from cloud.config.service import ConfigService
from cloud.config.tracker import ConfigTracker

__all__ = ["run_config_loops"]

log = logging.getLogger(__name__)


async def run_config_loops(
    service: ConfigService,
    tracker: ConfigTracker,
    stop: asyncio.Event,
    *,
    interval_s: float,
    kick: Callable[[], None] | None = None,
    refresh_margin_s: float | None = None,
    provision_new: bool = True,
) -> None:
    """Until ``stop``: publish what is unpublished, expire overdue commands and (given
    ``refresh_margin_s``) re-sign configs about to expire, every ``interval_s``; ``kick``
    wakes the outbox relay after expiries; ``provision_new``: give new gateways their
    site's grid-code config."""
    while not stop.is_set():
        try:
            published = await asyncio.to_thread(service.publish_pending)
            if published.commands or published.configs:
                log.info(
                    "republished %d commands, %d configs", published.commands, published.configs
                )
            if await asyncio.to_thread(tracker.expire_overdue) and kick is not None:
                kick()
            # New gateways get their first config without a person.
            provisioned = await asyncio.to_thread(service.provision_new) if provision_new else 0
            if provisioned:
                log.info("provisioned %d new gateways", provisioned)
            await asyncio.to_thread(tracker.purge_tech_requests)
            # Rollouts after the tracker's round: outcomes read what it just recorded.
            await asyncio.to_thread(service.rollouts.advance_due)
            if refresh_margin_s is not None:
                refreshed = await asyncio.to_thread(
                    partial(service.refresh_expiring, margin_s=refresh_margin_s)
                )
                if refreshed:
                    log.info("re-signed %d configs before their not_after", refreshed)
        except DatabaseError as exc:
            # The database is away: the next round tries again, nothing is lost meanwhile.
            log.warning("config loop: %s: %s", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
