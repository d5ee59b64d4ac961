"""A change to the register that may move clusters (an area under another parent, a
cluster given another area, a CSV import of either) in one flow: the write scope, and
before it commits, the broker's access lists and a signed set_areas for every cluster
the change moved (devices.moves marked them); after the commit the set_areas are
published, or without a broker then, re-sent by the sweep (docs/protocol.md 4.6)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from broadcast.commands import Publication
from broadcast.context import Sending
from devices import broker_auth, moves
from health import operations


@asynccontextmanager
async def register_writing(runtime: Sending, *, actor: str) -> AsyncIterator[AsyncSession]:
    """The write scope for a change to the register; the clusters it moved are told."""
    told: list[Publication] = []
    async with runtime.writing() as session:
        yield session
        if moved := moves.take_moved(session):
            await broker_auth.sync(session, runtime.settings)  # the new topics allowed first
            told = await operations.tell_new_areas(
                session=session,
                settings=runtime.settings,
                actor=actor,
                now=runtime.clock.now(),
                ids=moved,
            )
    if told:
        await runtime.require_dispatcher().publish_commands("set_areas", told)
