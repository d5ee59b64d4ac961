"""Sending a broadcast, from any entry point (the API, a bulletin sent down from the
province, an accepted inbox item): speak typed text, take the content from its bulletin
or the standard warning it names, write the deliveries, commit, then publish."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from authority import Deed, authorise_aimed
from broadcast import repository, service
from broadcast.commands import Content
from broadcast.context import Sending
from broadcast.dispatch import content_of
from broadcast.models import Broadcast
from broadcast.schemas import BroadcastCreate, BroadcastRead
from bulletins import airing
from bulletins import service as bulletin_service
from core.actors import Actor
from core.database import session_scope
from media.tts import speech
from standard_warnings import airing as warning_airing

AlsoInTransaction = Callable[[AsyncSession, Broadcast], Awaitable[None]]


async def send(
    runtime: Sending,
    data: BroadcastCreate,
    actor: Actor,
    *,
    also: AlsoInTransaction | None = None,
) -> BroadcastRead:
    """Publishing after the commit means an acknowledgement can never arrive for a delivery
    that does not exist yet; if the process dies in between, the sweep sends it. Text with
    no recording is read aloud first (a second or so, outside any transaction), once the
    authority check has passed: a refused request writes nothing, not even its clip. The
    check is made again where the broadcast is written (broadcast.service.create)."""
    if data.needs_speech:
        async with session_scope(runtime.sessions) as session:
            await authorise_aimed(session, actor, Deed.SEND, data)
        text = data.text or ""
        if data.drill:  # heard as an exercise, not only seen as one
            text = f"{speech.drill_sentence(data.language)} {text}"
        spoken = await speech.speak(runtime.ingest_context(), text=text, language=data.language)
        data = data.model_copy(update={"media_sha256": spoken.sha256})
    [(broadcast, total, content)] = await _write(runtime, [(data, also)], actor)
    if not await runtime.require_dispatcher().publish_plays([(broadcast, content)]):
        return service.just_sent(broadcast, total, published=False)  # deliveries stay queued
    runtime.spawn(_mark_sent(runtime, [broadcast.id]), name=f"mark-sent-{broadcast.id}")
    return service.just_sent(broadcast, total, published=True)


async def send_many(
    runtime: Sending,
    batch: Sequence[tuple[BroadcastCreate, AlsoInTransaction | None]],
    actor: Actor,
) -> list[Broadcast]:
    """Several broadcasts in one transaction, published together: the slot every commune
    shares (the morning news) costs one commit and one publication burst, not one of each
    per commune. All or none are written: on an error the caller sends them one by one.
    No text-to-speech here (scheduled content is a recorded bulletin)."""
    written = await _write(runtime, batch, actor)
    broadcasts = [broadcast for broadcast, _, _ in written]
    dispatcher = runtime.require_dispatcher()
    if await dispatcher.publish_plays([(b, content) for b, _, content in written]):
        runtime.spawn(_mark_sent(runtime, [b.id for b in broadcasts]), name="mark-sent-batch")
    return broadcasts


async def _write(
    runtime: Sending,
    batch: Sequence[tuple[BroadcastCreate, AlsoInTransaction | None]],
    actor: Actor,
) -> list[tuple[Broadcast, int, Content]]:
    written = []
    async with runtime.writing() as session:
        for data, also in batch:
            data = await warning_airing.resolve(session=session, data=data)
            data, bulletin = await airing.resolve(
                session=session, clock=runtime.clock, actor=actor, data=data
            )
            broadcast, total = await service.create(
                session=session,
                clock=runtime.clock,
                settings=runtime.settings,
                data=data,
                actor=actor,
                bulletin_id=bulletin.id,
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
            content = await content_of(session, runtime.settings, broadcast)
            # Held by the clusters (a standard warning, a repeat of the rendition it airs):
            # the play does not carry it. A re-send still does (dispatch.plan_resends): it
            # goes to a cluster that has not confirmed, which most likely lacks it.
            if broadcast.aired_sha256 and await repository.held_by_clusters(
                session, media_sha256=broadcast.aired_sha256, broadcast_id=broadcast.id
            ):
                content = replace(content, first_airing=False)
            written.append((broadcast, total, content))
    return written


async def _mark_sent(runtime: Sending, broadcast_ids: list[str]) -> None:
    """Off the request path: the answer should not wait for acks holding the database."""
    now = runtime.clock.now()
    async with runtime.writing() as session:
        for broadcast_id in broadcast_ids:
            await repository.mark_sent(
                session, delivery_ids=None, broadcast_id=broadcast_id, at=now
            )
