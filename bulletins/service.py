"""The content library: create, edit, move through the editorial workflow, read.
Services flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from areas import service as area_service
from areas.models import Area
from bulletins.models import Bulletin, BulletinEvent
from bulletins.schemas import BulletinCreate, BulletinEventRead, BulletinRead, BulletinUpdate
from bulletins.workflow import Action, Status, decide, may_author, within
from core.actors import Actor, Role
from core.clock import Clock
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.paging import paged
from media import service as media_service
from wire.protocol import CommandClass


class BulletinNotFound(NotFound):
    def __init__(self, bulletin_id: str) -> None:
        super().__init__(f"bulletin {bulletin_id!r} not found", detail={"bulletin": bulletin_id})


async def get(*, session: AsyncSession, bulletin_id: str) -> Bulletin:
    bulletin = await session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise BulletinNotFound(bulletin_id)
    return bulletin


async def _area_of(session: AsyncSession, actor: Actor, code: str | None) -> Area:
    """The owner area: the one given (within the actor's scope), else the actor's own, else
    the province (the root)."""
    if code is None:
        code = actor.area
    if code is None:
        root = await session.scalar(select(Area).where(Area.parent_id.is_(None)).limit(1))
        if root is None:
            raise InvalidInput("no areas registered yet", detail={"field": "area"})
        return root
    area = await area_service.get(session=session, code=code)
    if not within(actor, area.path):
        raise Forbidden(
            f"{actor.label} may not write for area {code}", detail={"missing": "area", "area": code}
        )
    return area


async def _check_media(session: AsyncSession, sha256: str | None, kind: str, field: str) -> None:
    if sha256 is not None:
        media = await media_service.get(session=session, sha256=sha256)
        if media.kind != kind:
            raise InvalidInput(f"{field} is not {kind}", detail={"field": field})


def record(
    session: AsyncSession,
    bulletin: Bulletin,
    *,
    action: str,
    from_status: str | None,
    actor: Actor,
    at: datetime,
    note: str | None = None,
) -> None:
    session.add(
        BulletinEvent(
            bulletin_id=bulletin.id,
            action=action,
            from_status=from_status,
            to_status=bulletin.status,
            actor=actor.name,
            role=actor.role.value,
            at=at,
            note=note,
        )
    )


async def create(
    *,
    session: AsyncSession,
    clock: Clock,
    actor: Actor,
    data: BulletinCreate,
    spoken_sha256: str | None = None,
    status: Status = Status.DRAFT,
    aired_before_review: bool = False,
) -> Bulletin:
    """A new bulletin (a draft, unless an emergency creates it already submitted)."""
    if not may_author(actor):
        raise Forbidden(
            f"{actor.label} may not write bulletins", detail={"missing": "role", "role": actor.role}
        )
    area = await _area_of(session, actor, data.area)
    await _check_media(session, data.media_sha256, "audio", "media_sha256")
    await _check_media(session, data.image_sha256, "image", "image_sha256")
    now = clock.now()
    bulletin = Bulletin(
        id=str(uuid.uuid4()),
        title=data.title,
        topic=data.topic,
        language=data.language,
        body=(data.text or "").strip() or None,
        media_sha256=data.media_sha256 or spoken_sha256,
        image_sha256=data.image_sha256,
        stream_url=str(data.stream_url) if data.stream_url else None,
        spoken=data.media_sha256 is None and spoken_sha256 is not None,
        cls=data.cls.value,
        area_id=area.id,
        author=actor.name,
        status=status.value,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        aired_before_review=aired_before_review,
        created_at=now,
        updated_at=now,
    )
    session.add(bulletin)
    await session.flush()
    record(session, bulletin, action="create", from_status=None, actor=actor, at=now)
    await session.flush()
    return bulletin


async def update(
    *,
    session: AsyncSession,
    clock: Clock,
    actor: Actor,
    bulletin_id: str,
    data: BulletinUpdate,
    spoken_sha256: str | None = None,
) -> Bulletin:
    """Edit a draft (its author, or an administrator); anything further along is frozen so
    what was approved is what airs."""
    bulletin = await get(session=session, bulletin_id=bulletin_id)
    if bulletin.status != Status.DRAFT:
        raise Conflict(
            f"only drafts can be edited; this bulletin is {bulletin.status}",
            detail={"status": bulletin.status},
        )
    if actor.name != bulletin.author and actor.role is not Role.ADMIN:
        raise Forbidden(
            f"only {bulletin.author} may edit this draft",
            detail={"missing": "author", "author": bulletin.author},
        )
    await _check_media(session, data.media_sha256, "audio", "media_sha256")
    await _check_media(session, data.image_sha256, "image", "image_sha256")
    changes = data.model_dump(exclude_unset=True)
    if "text" in changes:
        bulletin.body = (changes.pop("text") or "").strip() or None
    if data.media_sha256 is not None:
        bulletin.spoken = False
    elif spoken_sha256 is not None:
        bulletin.media_sha256, bulletin.spoken = spoken_sha256, True
    for name, value in changes.items():
        setattr(bulletin, name, value)
    now = clock.now()
    bulletin.updated_at = now
    record(session, bulletin, action="edit", from_status=bulletin.status, actor=actor, at=now)
    await session.flush()
    return bulletin


async def transition(
    *,
    session: AsyncSession,
    clock: Clock,
    actor: Actor,
    bulletin_id: str,
    action: Action,
    note: str | None,
) -> Bulletin:
    bulletin = await get(session=session, bulletin_id=bulletin_id)
    area = await session.get(Area, bulletin.area_id)
    assert area is not None
    target = decide(
        action,
        status=Status(bulletin.status),
        actor=actor,
        author=bulletin.author,
        area_path=area.path,
        note=note,
    )
    before = bulletin.status
    now = clock.now()
    bulletin.status = target.value
    bulletin.updated_at = now
    if action in (Action.APPROVE, Action.REJECT):
        bulletin.review_note = (note or "").strip() or None
    record(
        session, bulletin, action=action.value, from_status=before, actor=actor, at=now, note=note
    )
    await session.flush()
    return bulletin


def airable(bulletin: Bulletin, cls: CommandClass, now: datetime) -> None:
    """Refuse what may not go on air: anything but an approved bulletin in its validity,
    except an emergency (aired at once, reviewed afterwards), which only a rejected or
    archived bulletin stops."""
    status = Status(bulletin.status)
    if status in (Status.REJECTED, Status.ARCHIVED):
        raise Conflict(
            f"bulletin {bulletin.id!r} is {status.value} and cannot be broadcast",
            detail={"bulletin": bulletin.id, "status": status.value},
        )
    if cls is CommandClass.EMERGENCY:
        return
    if status is not Status.APPROVED:
        raise Conflict(
            f"bulletin {bulletin.id!r} is {status.value}: only approved bulletins can be "
            "broadcast (emergencies excepted)",
            detail={"bulletin": bulletin.id, "status": status.value},
        )
    if bulletin.valid_from and now < bulletin.valid_from:
        raise Conflict(
            f"bulletin {bulletin.id!r} is valid from {bulletin.valid_from:%Y-%m-%d %H:%M} UTC",
            detail={"bulletin": bulletin.id, "field": "valid_from"},
        )
    if bulletin.valid_until and now >= bulletin.valid_until:
        raise Conflict(
            f"bulletin {bulletin.id!r} was valid until {bulletin.valid_until:%Y-%m-%d %H:%M} UTC",
            detail={"bulletin": bulletin.id, "field": "valid_until"},
        )


async def mark_aired(
    *, session: AsyncSession, bulletin: Bulletin, actor: Actor, at: datetime, broadcast_id: str
) -> None:
    """Record the airing; an emergency aired before approval goes to the editorial queue."""
    before = bulletin.status
    if bulletin.status == Status.DRAFT:
        bulletin.status = Status.SUBMITTED.value
    if bulletin.status != Status.APPROVED:
        bulletin.aired_before_review = True
    record(
        session,
        bulletin,
        action="broadcast",
        from_status=before,
        actor=actor,
        at=at,
        note=f"broadcast {broadcast_id}",
    )
    await session.flush()


async def history(session: AsyncSession, bulletin_id: str) -> Sequence[BulletinEvent]:
    rows = await session.scalars(
        select(BulletinEvent)
        .where(BulletinEvent.bulletin_id == bulletin_id)
        .order_by(BulletinEvent.id)
    )
    return rows.all()


async def to_read(
    session: AsyncSession, bulletin: Bulletin, *, with_history: bool = True
) -> BulletinRead:
    area = await session.get(Area, bulletin.area_id)
    events = await history(session, bulletin.id) if with_history else []
    return BulletinRead(
        id=bulletin.id,
        title=bulletin.title,
        topic=bulletin.topic,
        language=bulletin.language,
        text=bulletin.body,
        media_sha256=bulletin.media_sha256,
        image_sha256=bulletin.image_sha256,
        stream_url=bulletin.stream_url,
        spoken=bulletin.spoken,
        cls=CommandClass(bulletin.cls),
        area_code=area.code if area else "",
        author=bulletin.author,
        status=Status(bulletin.status),
        valid_from=bulletin.valid_from,
        valid_until=bulletin.valid_until,
        review_note=bulletin.review_note,
        aired_before_review=bulletin.aired_before_review,
        aired_live=bulletin.aired_live,
        created_at=bulletin.created_at,
        updated_at=bulletin.updated_at,
        history=[
            BulletinEventRead(
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                actor=e.actor,
                role=e.role,
                at=e.at,
                note=e.note,
            )
            for e in events
        ],
    )


async def check_visible(session: AsyncSession, actor: Actor, bulletin: Bulletin) -> None:
    """What list_page shows a person is what they may read by id: their area's subtree and
    what was written above it (another commune's draft is not theirs to read)."""
    if actor.area is None:
        return
    scope = await area_service.get(session=session, code=actor.area)
    area = await session.get(Area, bulletin.area_id)
    ancestors = [c for c in scope.path.split("/") if c]
    if area is not None and (area.path.startswith(scope.path) or area.code in ancestors):
        return
    raise Forbidden(
        f"{actor.label} works in area {actor.area}; bulletin {bulletin.id} is another area's",
        detail={"missing": "area", "bulletin": bulletin.id, "yours": actor.area},
    )


async def list_page(
    *,
    session: AsyncSession,
    actor: Actor,
    status: Status | None,
    topic: str | None,
    search: str | None,
    limit: int,
    offset: int,
    author: str | None = None,
) -> tuple[Sequence[Bulletin], int]:
    """The library as the actor may see it (their area's subtree), newest first."""
    query = select(Bulletin).join(Area, Bulletin.area_id == Area.id)
    if actor.area is not None:
        scope = await area_service.get(session=session, code=actor.area)
        # Their subtree, and what was written above them (the province's bulletins).
        ancestors = [c for c in scope.path.split("/") if c]
        query = query.where(
            or_(Area.path.startswith(scope.path, autoescape=True), Area.code.in_(ancestors))
        )
    if status is not None:
        query = query.where(Bulletin.status == status.value)
    if topic:
        query = query.where(Bulletin.topic == topic)
    if author:
        query = query.where(Bulletin.author == author)
    if search:
        query = query.where(Bulletin.title.ilike(f"%{search}%"))
    rows, total = await paged(
        session,
        query.order_by(Bulletin.updated_at.desc(), Bulletin.id),
        limit=limit,
        offset=offset,
    )
    return [bulletin for (bulletin,) in rows], total
