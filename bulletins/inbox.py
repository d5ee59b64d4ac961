"""Each commune's inbox of bulletins from above: queries and decisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from areas.models import Area
from bulletins import service as bulletin_service
from bulletins.models import Bulletin, InboxItem
from bulletins.schemas import InboxItemRead
from bulletins.workflow import InboxStatus
from core.actors import Actor
from core.errors import Conflict, NotFound
from core.paging import paged
from wire.protocol import CommandClass


class InboxItemNotFound(NotFound):
    def __init__(self, item_id: int) -> None:
        super().__init__(f"inbox item {item_id} not found", detail={"inbox_item": item_id})


async def get(session: AsyncSession, item_id: int) -> tuple[InboxItem, Bulletin, Area]:
    row = (
        await session.execute(
            select(InboxItem, Bulletin, Area)
            .join(Bulletin, InboxItem.bulletin_id == Bulletin.id)
            .join(Area, InboxItem.area_id == Area.id)
            .where(InboxItem.id == item_id)
        )
    ).first()
    if row is None:
        raise InboxItemNotFound(item_id)
    return row[0], row[1], row[2]


async def list_page(
    session: AsyncSession, *, scope: Area | None, status: str | None, limit: int, offset: int
) -> tuple[Sequence[Row[InboxItem, Bulletin, Area]], int]:
    query = (
        select(InboxItem, Bulletin, Area)
        .join(Bulletin, InboxItem.bulletin_id == Bulletin.id)
        .join(Area, InboxItem.area_id == Area.id)
    )
    if scope is not None:
        query = query.where(Area.path.startswith(scope.path, autoescape=True))
    if status is not None:
        query = query.where(InboxItem.status == status)
    pending_first = case((InboxItem.status == InboxStatus.PENDING, 0), else_=1)
    return await paged(
        session,
        query.order_by(pending_first, InboxItem.received_at.desc(), InboxItem.id),
        limit=limit,
        offset=offset,
    )


async def decide(
    session: AsyncSession,
    item_id: int,
    *,
    actor: Actor,
    status: InboxStatus,
    at: datetime,
    note: str | None,
    broadcast_id: str | None,
) -> None:
    # Locked and checked again inside the deciding transaction: two operators pressing
    # "accept" at once must not put the bulletin on air twice.
    item = await session.get(InboxItem, item_id, with_for_update=True)
    if item is None:
        raise InboxItemNotFound(item_id)
    if item.status != InboxStatus.PENDING:
        raise Conflict(f"this inbox item is already {item.status}", detail={"status": item.status})
    item.status = status
    item.handled_by = actor.name
    item.handled_at = at
    item.note = note
    item.broadcast_id = broadcast_id
    await session.flush()


async def to_read(
    session: AsyncSession, item: InboxItem, bulletin: Bulletin, area: Area
) -> InboxItemRead:
    return InboxItemRead(
        id=item.id,
        bulletin=await bulletin_service.to_read(session, bulletin, with_history=False),
        area_code=area.code,
        cls=CommandClass(item.cls),
        sender=item.sender,
        sender_level=item.sender_level,
        received_at=item.received_at,
        expires_at=item.expires_at,
        status=item.status,
        handled_by=item.handled_by,
        handled_at=item.handled_at,
        note=item.note,
        broadcast_id=item.broadcast_id,
    )
