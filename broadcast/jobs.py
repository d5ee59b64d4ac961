"""Named background jobs of the broadcast domain, run by scheduler.runner."""

from __future__ import annotations

import logging
from collections.abc import Callable

from broadcast import service
from broadcast.dispatch import Dispatcher
from core.clock import Clock
from core.writes import Writing

log = logging.getLogger(__name__)


async def sweep_deliveries(
    *,
    dispatcher: Dispatcher,
    clock: Clock,
    writing: Writing,
    answers_unread: Callable[[], bool] = lambda: False,
) -> None:
    """Expire what is past its time, then re-send what is due.

    No re-sends while acknowledgements are still waiting to be written: the clusters may
    well have answered already, and asking a whole province again would double the very
    load that made us late (a retry storm).
    """
    async with writing() as session:
        expired = await service.expire_due(session=session, clock=clock)
        if expired:
            log.info("expired broadcasts %s", expired)
    if answers_unread():
        return
    async with writing() as session:
        messages = await dispatcher.plan_resends(session)
    if messages:
        await dispatcher.publish(messages)
        log.info("re-sent %d commands", len(messages))
