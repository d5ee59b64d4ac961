from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from broadcast import repository, sending, service, staging
from broadcast.context import SendingDep
from broadcast.models import Broadcast
from broadcast.schemas import BroadcastCreate, BroadcastRead, BroadcastSummary, Reach, ReachRequest
from broadcast.states import TERMINAL
from core.database import session_scope
from core.policy import Action
from core.schemas import Limit, Offset, Page
from standard_warnings import airing as warning_airing
from web.deps import ActorDep, SessionDep
from web.guard import allow
from web.targets import From, Resolver, stored

router = APIRouter(prefix="/api/v1/broadcasts", tags=["broadcasts"])
# How the guard finds what a broadcast in the path touches (registered in app/main.py).
TARGETS: dict[From, Resolver] = {From.BROADCAST: stored(Broadcast, "broadcast_id")}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model_by_alias=True,
    dependencies=[allow(Action.SEND, From.BODY_TARGETS)],
)
async def send_broadcast(
    data: BroadcastCreate, runtime: SendingDep, actor: ActorDep
) -> BroadcastRead:
    """Send now: an approved bulletin (`bulletin_id`), or an emergency from a recording,
    a stream or typed text (read aloud), which is aired at once and reviewed afterwards."""
    return await sending.send(runtime, data, actor)


@router.get("", dependencies=[allow(Action.READ, From.PROVINCE)])
async def list_broadcasts(
    session: SessionDep, status: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> Page[BroadcastSummary]:
    rows, total = await repository.list_page(session, status=status, limit=limit, offset=offset)
    items = [
        BroadcastSummary(
            id=b.id,
            title=b.title,
            cls=b.cls,  # type: ignore[arg-type]
            status=b.status,
            drill=b.drill,
            created_at=b.created_at,
            expires_at=b.expires_at,
        )
        for b in rows
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{broadcast_id}",
    response_model_by_alias=True,
    dependencies=[allow(Action.READ, From.BROADCAST)],
)
async def read_broadcast(
    broadcast_id: str,
    session: SessionDep,
    rollup_depth: Annotated[int, Query(ge=0, le=10, description="0 = province")] = 1,
    unconfirmed_limit: Annotated[int, Query(ge=0, le=100_000)] = 200,
) -> BroadcastRead:
    """Progress: counts per state, a rollup per area (worst first), who has not confirmed."""
    return await service.read(
        session=session,
        broadcast_id=broadcast_id,
        rollup_depth=rollup_depth,
        unconfirmed_limit=unconfirmed_limit,
    )


@router.post(
    "/{broadcast_id}/cancel",
    response_model_by_alias=True,
    dependencies=[allow(Action.CANCEL, From.BROADCAST)],
)
async def cancel_broadcast(
    broadcast_id: str, runtime: SendingDep, actor: ActorDep
) -> BroadcastRead:
    """Stop it everywhere, including clusters that are playing it now. The sender's level
    or a higher one may; an emergency only the duty officer (docs/security.md)."""
    async with runtime.writing() as session:
        broadcast = await service.cancel(
            session=session,
            clock=runtime.clock,
            settings=runtime.settings,
            broadcast_id=broadcast_id,
            actor=actor,
        )
    published = await runtime.require_dispatcher().publish_cancel(broadcast)
    async with session_scope(runtime.sessions) as session:
        read = await service.read(session=session, broadcast_id=broadcast_id, unconfirmed_limit=0)
    return read.model_copy(update={"published": published})


LIVE_INTERVAL_S = 1.0  # the server looks once a second, however many people watch


@router.get("/{broadcast_id}/events", dependencies=[allow(Action.READ, From.BROADCAST)])
async def broadcast_events(
    broadcast_id: str,
    request: Request,
    runtime: SendingDep,
    unconfirmed_limit: Annotated[int, Query(ge=0, le=5000)] = 100,
) -> StreamingResponse:
    """Server-sent events: the broadcast's progress (as GET /{id}) whenever it changes,
    until every delivery has an outcome or the viewer leaves. One query a second per
    viewer on the server, and nothing at all from the browser: no polling storm when the
    whole duty room watches a flood warning go out."""
    async with session_scope(runtime.sessions) as session:
        await service.read(session=session, broadcast_id=broadcast_id, unconfirmed_limit=0)

    async def stream() -> AsyncIterator[bytes]:
        last = b""
        while not await request.is_disconnected():
            async with session_scope(runtime.sessions) as session:
                read = await service.read(
                    session=session,
                    broadcast_id=broadcast_id,
                    rollup_depth=3,
                    unconfirmed_limit=unconfirmed_limit,
                )
            data = read.model_dump_json(by_alias=True).encode()
            if data != last:
                last = data
                yield b"event: progress\ndata: " + data + b"\n\n"
            if read.total and all(s in TERMINAL for s, n in read.counts.items() if n):
                yield b"event: done\ndata: {}\n\n"
                return
            await asyncio.sleep(LIVE_INTERVAL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/reach", dependencies=[allow(Action.READ, From.BODY_TARGETS)])
async def reach(
    data: ReachRequest, session: SessionDep, runtime: SendingDep, actor: ActorDep
) -> Reach:
    """How many clusters, e-boards and communes these targets cover: what a duty officer
    confirms before sending. With the audio to be sent (`media_sha256` or `bulletin_id`,
    and the right to send it there), the clusters fetch and verify it meanwhile
    (`staged`), so the send finds it held. A standard warning (`warning`) is held
    already: nothing is staged."""
    found = await service.reach(session=session, areas=data.areas, clusters=data.clusters)
    if data.warning is not None:  # held by every cluster: known, and nothing to stage
        await warning_airing.named(session, data.warning)
    if data.stages:
        staged = await staging.stage(session=session, runtime=runtime, data=data, actor=actor)
        found = found.model_copy(update={"staged": staged})
    return found
