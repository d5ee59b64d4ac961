"""Sending a broadcast, from any entry point (the API, a bulletin sent down from the
province, an accepted inbox item): speak typed text, take the content from its bulletin,
write the deliveries, commit, then publish."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from app.runtime import Runtime
from broadcast import repository, service
from broadcast.dispatch import content_of
from broadcast.models import Broadcast
from broadcast.schemas import BroadcastCreate, BroadcastRead
from bulletins import airing
from bulletins import service as bulletin_service
from core.actors import Actor
from core.database import session_scope
from media.tts import speech

AlsoInTransaction = Callable[[AsyncSession, Broadcast], Awaitable[None]]


async def send(
    runtime: Runtime,
    data: BroadcastCreate,
    actor: Actor,
    *,
    also: AlsoInTransaction | None = None,
) -> BroadcastRead:
    """Publishing after the commit means an acknowledgement can never arrive for a delivery
    that does not exist yet; if the process dies in between, the sweep sends it. Text with
    no recording is read aloud first (a second or so, outside any transaction)."""
    if data.needs_speech:
        spoken = await speech.speak(
            runtime.ingest_context(), text=data.text or "", language=data.language
        )
        data = data.model_copy(update={"media_sha256": spoken.sha256})
    async with runtime.write_lock, session_scope(runtime.sessions) as session:
        data, bulletin = await airing.resolve(
            session=session, clock=runtime.clock, actor=actor, data=data
        )
        broadcast, total = await service.create(
            session=session,
            clock=runtime.clock,
            settings=runtime.settings,
            data=data,
            bulletin_id=bulletin.id,
            sent_by=actor.name,
        )
        await bulletin_service.mark_aired(
            session=session,
            bulletin=bulletin,
            actor=actor,
            at=broadcast.created_at,
            broadcast_id=broadcast.id,
        )
        if also is not None:
            await also(session, broadcast)
        content = await content_of(session, broadcast)
    if not await runtime.require_dispatcher().publish_play(broadcast, content):
        return service.just_sent(broadcast, total, published=False)  # deliveries stay queued
    runtime.spawn(_mark_sent(runtime, broadcast.id), name=f"mark-sent-{broadcast.id}")
    return service.just_sent(broadcast, total, published=True)


async def _mark_sent(runtime: Runtime, broadcast_id: str) -> None:
    """Off the request path: the answer should not wait for acks holding the database."""
    now = runtime.clock.now()
    async with runtime.write_lock, session_scope(runtime.sessions) as session:
        await repository.mark_sent(session, delivery_ids=None, broadcast_id=broadcast_id, at=now)
