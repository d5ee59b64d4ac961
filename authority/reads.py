"""What a person scoped to an area may read of the media store: the recordings, speech and
images of the bulletins and broadcasts that concern their area, not another commune's.
People not scoped to an area (the province's staff, the editorial board, administrators)
read everything."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from areas.models import Area
from authority.rules import Refused
from broadcast.models import Broadcast, Delivery
from bulletins.models import Bulletin, InboxItem
from core.actors import Actor
from devices.models import Cluster
from media.models import MediaFile


async def may_read_media(session: AsyncSession, actor: Actor, sha256: str) -> None:
    """Refused unless a bulletin of the actor's area, one in an inbox of it, or a broadcast
    heard in it carries this file (or another rendition of the same recording)."""
    if actor.area is None:
        return
    own = await session.scalar(select(Area.path).where(Area.code == actor.area))
    if own is None or not await _concerns(session, await _related(session, sha256), own):
        raise Refused(
            f"{actor.label} works in area {actor.area}; media {sha256[:12]}… is not used there",
            "area",
            media=sha256,
            yours=actor.area,
        )


async def _related(session: AsyncSession, sha256: str) -> set[str]:
    """The file, the original it was rendered from, and that original's renditions."""
    source = await session.scalar(select(MediaFile.source_sha256).where(MediaFile.sha256 == sha256))
    root = source or sha256
    renditions = await session.scalars(
        select(MediaFile.sha256).where(MediaFile.source_sha256 == root)
    )
    return {sha256, root, *renditions.all()}


async def _concerns(session: AsyncSession, related: set[str], own_path: str) -> bool:
    def carries(model: type[Bulletin] | type[Broadcast]) -> ColumnElement[bool]:
        return or_(model.media_sha256.in_(related), model.image_sha256.in_(related))

    inside = Area.path.startswith(own_path, autoescape=True)
    bulletins = (
        select(Bulletin.id).join(Area, Area.id == Bulletin.area_id).where(carries(Bulletin), inside)
    )
    inboxes = (
        select(InboxItem.id)
        .join(Bulletin, Bulletin.id == InboxItem.bulletin_id)
        .join(Area, Area.id == InboxItem.area_id)
        .where(carries(Bulletin), inside)
    )
    heard = (
        select(Delivery.id)
        .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
        .join(Cluster, Cluster.id == Delivery.cluster_id)
        .join(Area, Area.id == Cluster.area_id)
        .where(carries(Broadcast), inside)
    )
    for query in (bulletins, inboxes, heard):
        if await session.scalar(select(exists(query))):
            return True
    return False
