"""Live sessions: go live (a broadcast like any other, checked by the one authority
check), take the officer's audio, end (played out, or stopped and the clusters told),
and keep the record (a bulletin marked aired live, in the editorial queue)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, Protocol

from authority import Deed, authorise_aimed
from broadcast import repository as broadcast_repository
from broadcast import service as broadcast_service
from broadcast.commands import Content
from broadcast.context import Sending
from broadcast.models import Broadcast
from broadcast.schemas import BroadcastCreate
from broadcast.states import BroadcastStatus
from bulletins import service as bulletin_service
from bulletins.models import Bulletin
from bulletins.schemas import BulletinCreate
from bulletins.workflow import Status
from core.actors import Actor
from core.database import session_scope
from core.errors import AppError, Conflict, Forbidden, NotFound
from live.audio import SAMPLE_RATE, Decoder, LiveAudio
from live.models import LiveSession
from live.schemas import LiveRead, LiveStart, LiveStatus
from live.sessions import LiveSessions, Session
from media import service as media_service
from media import storage
from wire.protocol import CommandClass

log = logging.getLogger(__name__)

WATCH_S = 0.25  # how often a session looks at its officer's link and its broadcast
STATUS_EVERY_S = 1.0  # how often it reads its broadcast (a cancel from another console)


class Live(Sending, Protocol):
    live: LiveSessions


class LiveNotFound(NotFound):
    def __init__(self, broadcast_id: str) -> None:
        super().__init__(
            f"live session {broadcast_id!r} not found", detail={"broadcast": broadcast_id}
        )


def audio_path(broadcast_id: str) -> str:
    return f"/api/v1/live/{broadcast_id}/audio"


async def start(ctx: Live, data: LiveStart, actor: Actor) -> LiveRead:
    """Write the broadcast (the authority check first: a refusal writes nothing), start
    the audio path, then publish one command per targeted area."""
    settings = ctx.settings
    now = ctx.clock.now()
    request = BroadcastCreate.model_validate(
        {
            "title": data.title,
            "class": data.cls,
            "level": data.level,
            "areas": data.areas,
            "clusters": data.clusters,
            "text": data.title,  # what e-boards show while it is on air
            "expires_at": now + timedelta(seconds=settings.live_max_s),
            "drill": data.drill,
        }
    )
    async with ctx.writing() as session:
        await authorise_aimed(session, actor, Deed.SEND, request)
        _, _, targets = await broadcast_service.resolve_targets(
            session, request.areas, request.clusters
        )
        _refuse_overlap(ctx.live, data.cls, frozenset(targets))
        bulletin = await bulletin_service.create(
            session=session,
            clock=ctx.clock,
            actor=actor,
            data=BulletinCreate.model_validate(
                {
                    "title": data.title,
                    "topic": "emergency" if data.cls is CommandClass.EMERGENCY else "live",
                    "text": data.title,
                    "class": data.cls,
                }
            ),
            status=Status.SUBMITTED,
            aired_before_review=True,
        )
        bulletin.aired_live = True
        broadcast, _ = await broadcast_service.create(
            session=session,
            clock=ctx.clock,
            settings=settings,
            data=request,
            actor=actor,
            bulletin_id=bulletin.id,
            live=True,
        )
        await bulletin_service.mark_aired(
            session=session,
            bulletin=bulletin,
            actor=actor,
            at=broadcast.created_at,
            broadcast_id=broadcast.id,
        )
        session.add(LiveSession(broadcast_id=broadcast.id, started_by=actor.name, started_at=now))
    recording = await asyncio.to_thread(storage.temp_file, settings.media_dir, ".wav")
    audio = LiveAudio(
        recording, jitter_s=settings.live_jitter_s, max_buffer_s=settings.live_max_buffer_s
    )
    await audio.start()  # the stream answers before any cluster is told of it
    live = Session(
        broadcast_id=broadcast.id,
        title=broadcast.title,
        cls=data.cls,
        actor=actor,
        started_at=now,
        bulletin_id=bulletin.id,
        cluster_ids=frozenset(targets),
        audio=audio,
    )
    ctx.live.add(live)
    _keep(live, _watch(ctx, live), "live-watch")
    if await ctx.require_dispatcher().publish_plays([(broadcast, Content())]):
        ctx.spawn(_mark_sent(ctx, broadcast.id), name=f"mark-sent-{broadcast.id}")
    return _read(live, broadcast.id)


def _refuse_overlap(sessions: LiveSessions, cls: CommandClass, targets: frozenset[int]) -> None:
    """Two voices on one cluster: an emergency pre-empts (the clusters do it, as for any
    emergency); anything else is refused, naming the session on air."""
    if cls is CommandClass.EMERGENCY:
        return
    for other in sessions.carrying():
        shared = len(other.cluster_ids & targets)
        if shared:
            raise Conflict(
                f"{other.actor.name} is live on {shared} of these clusters "
                f"({other.title!r}); only an emergency may cut in",
                detail={"field": "areas", "live": other.broadcast_id},
            )


def _keep(live: Session, coro: Coroutine[Any, Any, None], name: str) -> None:
    task = asyncio.create_task(coro, name=f"{name}-{live.broadcast_id}")
    live.tasks.add(task)
    task.add_done_callback(live.tasks.discard)


async def _mark_sent(ctx: Live, broadcast_id: str) -> None:
    now = ctx.clock.now()
    async with ctx.writing() as session:
        await broadcast_repository.mark_sent(
            session, delivery_ids=None, broadcast_id=broadcast_id, at=now
        )


def session_for(ctx: Live, broadcast_id: str) -> Session:
    live = ctx.live.get(broadcast_id)
    if live is None:
        raise LiveNotFound(broadcast_id)
    return live


async def speak(ctx: Live, live: Session, actor: Actor, chunks: ChunkSource) -> str | None:
    """One officer connection: its WebM/Opus into the session until it closes. Returns
    "end" if the officer finished (the session then plays out and ends), else None (a
    dropped link: the session carries silence, and ends if the grace passes)."""
    if actor.name != live.actor.name:
        raise Forbidden(
            f"{actor.label} did not start this live session",
            detail={"missing": "role", "broadcast": live.broadcast_id},
        )
    async with live.lock:
        if live.ending is not None:
            return "end"
        decoder = Decoder(live.audio)
        await decoder.start()
        live.decoder = decoder
        live.connections += 1
    outcome = None
    try:
        async for chunk in chunks:
            if chunk is None:
                outcome = "end"
                break
            await decoder.write(chunk)
    finally:
        await decoder.close()
        live.connections -= 1
        live.disconnected_at = time.monotonic()
    if outcome == "end":
        await end(ctx, live, reason=f"ended by {actor.name}", play_out=True)
    return outcome


class ChunkSource(Protocol):
    """The officer's audio: bytes, then None if the officer pressed "end"."""

    def __aiter__(self) -> ChunkSource: ...

    async def __anext__(self) -> bytes | None: ...


async def finish(ctx: Live, broadcast_id: str, actor: Actor) -> LiveRead:
    """The officer (or anyone who may stop the broadcast) ends it: what was said plays
    out, then the stream ends and the clusters answer `played`."""
    live = session_for(ctx, broadcast_id)
    if actor.name != live.actor.name:
        async with session_scope(ctx.sessions) as session:
            broadcast = await broadcast_service.get(session=session, broadcast_id=broadcast_id)
            await broadcast_service.authorise_stop(session, actor, broadcast)
    await end(ctx, live, reason=f"ended by {actor.name}", play_out=True)
    return _read(live, broadcast_id)


async def end(
    ctx: Live, live: Session, *, reason: str, play_out: bool = False, cancel: bool = False
) -> None:
    """End a session once, whoever asks: the officer (`play_out`), a lost link or the
    longest session (`cancel`: the clusters are told to stop), a cancel from another
    console (already told). Returns when the record is written."""
    if live.ending is not None:
        await live.done.wait()
        return
    live.ending = reason
    try:
        if cancel:
            await _cancel(ctx, live, reason)
        if play_out:
            await live.audio.finish()
        else:
            await live.audio.stop()
        await live.audio.close()
        live.ended_at = ctx.clock.now()
        await _write_end(ctx, live, reason, shorten=not cancel)
        ctx.spawn(_keep_recording(ctx, live), name=f"live-recording-{live.broadcast_id}")
    finally:
        live.done.set()
        ctx.live.discard(live.broadcast_id)
        for task in list(live.tasks):
            if task is not asyncio.current_task():
                task.cancel()


async def _cancel(ctx: Live, live: Session, reason: str) -> None:
    try:
        async with ctx.writing() as session:
            broadcast = await broadcast_service.cancel(
                session=session,
                clock=ctx.clock,
                settings=ctx.settings,
                broadcast_id=live.broadcast_id,
                actor=live.actor,
            )
    except AppError as exc:  # already cancelled or expired: nothing left to stop
        log.info("live %s: not cancelled (%s)", live.broadcast_id, exc)
        return
    await ctx.require_dispatcher().publish_cancel(broadcast)


async def _write_end(ctx: Live, live: Session, reason: str, *, shorten: bool) -> None:
    audio = live.audio
    async with ctx.writing() as session:
        record = await session.get(LiveSession, live.broadcast_id)
        if record is not None:
            record.ended_at = live.ended_at
            record.end_reason = reason[:300]
            record.spoken_ms = round(audio.input_samples * 1000 / SAMPLE_RATE)
            record.recorded_ms = round(audio.recorded_samples * 1000 / SAMPLE_RATE)
            record.gaps_ms = round(audio.silence_samples * 1000 / SAMPLE_RATE)
        broadcast = await session.get(Broadcast, live.broadcast_id)
        if shorten and broadcast is not None and live.ended_at is not None:
            # Over: clusters never reached expire soon, a late "played" is still taken.
            soon = live.ended_at + timedelta(seconds=ctx.settings.live_end_slack_s)
            broadcast.expires_at = min(broadcast.expires_at, soon)


async def _keep_recording(ctx: Live, live: Session) -> None:
    """The record becomes the bulletin's audio (normalised like any upload), so the
    editorial board hears exactly what went out."""
    path = live.audio.recording
    sha256 = problem = None
    try:
        if live.audio.recorded_samples == 0:
            problem = "nothing was said"
        else:
            digest, size = await asyncio.to_thread(storage.hash_file, path)
            media = await media_service.ingest(
                ctx.ingest_context(),
                source=path,
                sha256=digest,
                size=size,
                original_name=f"live-{live.broadcast_id}.wav",
            )
            sha256 = media.sha256
    except AppError as exc:  # refused by the pipeline: silent, too short
        problem = str(exc)[:300]
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    async with ctx.writing() as session:
        record = await session.get(LiveSession, live.broadcast_id)
        if record is not None:
            record.recording_sha256 = sha256
            record.recording_problem = problem
        if sha256 is not None:
            bulletin = await session.get(Bulletin, live.bulletin_id)
            if bulletin is not None:
                bulletin.media_sha256 = sha256


async def _watch(ctx: Live, live: Session) -> None:
    """End the session when the officer's link has been gone past the grace, when the
    broadcast was cancelled elsewhere, or at its longest."""
    grace = ctx.settings.live_grace_s
    longest = ctx.settings.live_max_s - ctx.settings.live_end_slack_s
    next_read = 0.0
    while live.ending is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.audio.ended.wait(), WATCH_S)
        if live.ending is not None:
            return
        now = time.monotonic()
        if live.connections == 0 and now - live.disconnected_at > grace:
            reason = f"the officer's link was lost for more than {grace:g} s"
            await end(ctx, live, reason=reason, cancel=True)
            return
        if live.elapsed_s >= longest:
            await end(ctx, live, reason=f"the longest session ({longest} s) reached", cancel=True)
            return
        if now >= next_read:
            next_read = now + STATUS_EVERY_S
            async with session_scope(ctx.sessions) as session:
                broadcast = await session.get(Broadcast, live.broadcast_id)
                status = broadcast.status if broadcast is not None else None
            if status != BroadcastStatus.ACTIVE:
                await end(ctx, live, reason=f"the broadcast was {status}")
                return


async def close_all(ctx: Live) -> None:
    """The process stops: every session ends, the clusters told."""
    for live in ctx.live.all():
        await end(ctx, live, reason="the server stopped", cancel=True)


async def read(ctx: Live, broadcast_id: str) -> LiveRead:
    live = ctx.live.get(broadcast_id)
    if live is not None and live.ending is None:
        return _read(live, broadcast_id)
    async with session_scope(ctx.sessions) as session:
        record = await session.get(LiveSession, broadcast_id)
        broadcast = await session.get(Broadcast, broadcast_id)
    if record is None or broadcast is None:
        raise LiveNotFound(broadcast_id)
    ended = record.ended_at
    return LiveRead(
        broadcast_id=broadcast_id,
        title=broadcast.title,
        cls=CommandClass(broadcast.cls),
        status=LiveStatus.ENDED if ended else LiveStatus.ENDING,
        started_by=record.started_by,
        started_at=record.started_at,
        ended_at=ended,
        end_reason=record.end_reason,
        elapsed_s=((ended or ctx.clock.now()) - record.started_at).total_seconds(),
        bulletin_id=broadcast.bulletin_id,
        audio_path=audio_path(broadcast_id),
        spoken_ms=record.spoken_ms,
        recorded_ms=record.recorded_ms,
        gaps_ms=record.gaps_ms,
        recording_sha256=record.recording_sha256,
        recording_problem=record.recording_problem,
    )


def _read(live: Session, broadcast_id: str) -> LiveRead:
    audio = live.audio
    ms = 1000 / SAMPLE_RATE
    return LiveRead(
        broadcast_id=broadcast_id,
        title=live.title,
        cls=live.cls,
        status=LiveStatus.LIVE if live.ending is None else LiveStatus.ENDING,
        started_by=live.actor.name,
        started_at=live.started_at,
        end_reason=live.ending,
        elapsed_s=live.elapsed_s,
        bulletin_id=live.bulletin_id,
        audio_path=audio_path(broadcast_id),
        officer_connected=live.connections > 0,
        listeners=live.listeners,
        spoken_ms=round(audio.input_samples * ms),
        recorded_ms=round(audio.recorded_samples * ms),
        gaps_ms=round(audio.silence_samples * ms),
        resumes_ms=[(o * ms, s * ms) for o, s in audio.resumes],
    )
