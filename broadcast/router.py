from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.deps import ActorDep, RuntimeDep, SessionDep
from app.guard import From, allow
from broadcast import repository, sending, service
from broadcast.schemas import BroadcastCreate, BroadcastRead, BroadcastSummary
from core.database import session_scope
from core.policy import Action
from core.schemas import Limit, Offset, Page

router = APIRouter(prefix="/api/v1/broadcasts", tags=["broadcasts"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model_by_alias=True,
    dependencies=[allow(Action.SEND, From.BODY_TARGETS)],
)
async def send_broadcast(
    data: BroadcastCreate, runtime: RuntimeDep, actor: ActorDep
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
async def cancel_broadcast(broadcast_id: str, runtime: RuntimeDep) -> BroadcastRead:
    """Stop it everywhere, including clusters that are playing it now."""
    async with runtime.write_lock, session_scope(runtime.sessions) as session:
        broadcast = await service.cancel(
            session=session,
            clock=runtime.clock,
            settings=runtime.settings,
            broadcast_id=broadcast_id,
        )
    published = await runtime.require_dispatcher().publish_cancel(broadcast)
    async with session_scope(runtime.sessions) as session:
        read = await service.read(session=session, broadcast_id=broadcast_id, unconfirmed_limit=0)
    return read.model_copy(update={"published": published})
