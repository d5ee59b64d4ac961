"""Named background jobs of the broadcast domain, run by scheduler.runner."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcast import service
from broadcast.dispatch import Dispatcher
from core.clock import Clock
from core.database import session_scope

log = logging.getLogger(__name__)


async def sweep_deliveries(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    clock: Clock,
    write_lock: asyncio.Lock,
    answers_unread: Callable[[], bool] = lambda: False,
) -> None:
    """Expire what is past its time, then re-send what is due.

    No re-sends while acknowledgements are still waiting to be written: the clusters may
    well have answered already, and asking a whole province again would double the very
    load that made us late (a retry storm).
    """
    async with write_lock, session_scope(sessions) as session:
        expired = await service.expire_due(session=session, clock=clock)
        if expired:
            log.info("expired broadcasts %s", expired)
    if answers_unread():
        return
    async with write_lock, session_scope(sessions) as session:
        messages = await dispatcher.plan_resends(session)
    if messages:
        await dispatcher.publish(messages)
        log.info("re-sent %d commands", len(messages))
