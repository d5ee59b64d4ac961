"""Where bulletins meet broadcasts: what a send may air, and bulletins sent down to the
communes (Circular 39/2020: normal waits in each commune's inbox, priority and emergency
go on air at once)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from areas import repository as area_repository
from areas.models import Area
from areas.service import AreaNotFound
from authority import Deed, authorise, own_level
from authority.rules import inside
from broadcast.schemas import BroadcastCreate
from bulletins import service as bulletin_service
from bulletins.models import Bulletin, InboxItem
from bulletins.schemas import BulletinCreate, DistributeRequest
from bulletins.workflow import InboxStatus, Status
from core.actors import Actor
from core.clock import Clock
from core.errors import Conflict, InvalidInput
from core.policy import Action, require
from wire.protocol import CommandClass, SenderLevel

CONTENT_FIELDS = ("media_sha256", "stream_url", "image_sha256")
COMMUNE = "commune"


async def resolve(
    *, session: AsyncSession, clock: Clock, actor: Actor, data: BroadcastCreate
) -> tuple[BroadcastCreate, Bulletin]:
    """The send with its content taken from the bulletin it airs. An emergency sent without
    one gets one on the spot (submitted, to be reviewed afterwards); anything else must
    name an approved bulletin."""
    if data.bulletin_id is None:
        if data.cls is not CommandClass.EMERGENCY:
            raise Conflict(
                "only approved bulletins can be broadcast: give bulletin_id (emergencies "
                "may go out directly)",
                detail={"field": "bulletin_id"},
            )
        bulletin = await bulletin_service.create(
            session=session,
            clock=clock,
            actor=actor,
            data=BulletinCreate.model_validate(
                {
                    "title": data.title,
                    "topic": "emergency",
                    "language": data.language,
                    "text": data.text,
                    "media_sha256": data.media_sha256,
                    "image_sha256": data.image_sha256,
                    "stream_url": data.stream_url,
                    "class": CommandClass.EMERGENCY,
                }
            ),
            status=Status.SUBMITTED,
            aired_before_review=True,
        )
        return data, bulletin
    bulletin = await bulletin_service.get(session=session, bulletin_id=data.bulletin_id)
    bulletin_service.airable(bulletin, data.cls, clock.now())
    for name in CONTENT_FIELDS:
        given = getattr(data, name)
        if given is not None and str(given) != (getattr(bulletin, name) or ""):
            raise InvalidInput(
                f"{name} comes from the bulletin; leave it out", detail={"field": name}
            )
    filled = data.model_copy(
        update={
            "media_sha256": bulletin.media_sha256,
            "stream_url": bulletin.stream_url,
            "image_sha256": bulletin.image_sha256,
            "text": data.text or bulletin.body,
            "language": bulletin.language,
        }
    )
    return filled, bulletin


async def communes_under(session: AsyncSession, codes: list[str]) -> list[Area]:
    found = await area_repository.get_many_by_code(session, codes)
    for code in codes:
        if code not in found:
            raise AreaNotFound(code)
    communes: dict[int, Area] = {}
    for area in found.values():
        query = select(Area).where(
            Area.path.startswith(area.path, autoescape=True), Area.level == COMMUNE
        )
        for commune in (await session.scalars(query)).all():
            communes[commune.id] = commune
    return sorted(communes.values(), key=lambda a: a.code)


async def check_may_distribute(
    session: AsyncSession, actor: Actor, bulletin: Bulletin, request: DistributeRequest
) -> None:
    """Sending down is airing (priority, emergency) or offering to air (normal): the
    authority check for the class, the areas and the sender's level, before anything."""
    require(actor, Action.DISTRIBUTE)
    await authorise(session, actor, Deed.SEND, cls=request.cls, areas=request.areas)
    if bulletin.status != Status.APPROVED and request.cls is not CommandClass.EMERGENCY:
        raise Conflict(
            f"bulletin {bulletin.id!r} is {bulletin.status}: approve it before sending it down",
            detail={"status": bulletin.status},
        )


async def offer_to_inboxes(
    session: AsyncSession,
    *,
    bulletin: Bulletin,
    communes: list[Area],
    actor: Actor,
    now: datetime,
    expires_at: datetime | None,
) -> list[InboxItem]:
    """A normal bulletin in each commune's inbox, for its operator to air or not; written
    only if the actor may send it there."""
    await authorise(
        session, actor, Deed.SEND, cls=CommandClass.NORMAL, areas=[c.code for c in communes]
    )
    items = inbox_items(
        bulletin=bulletin,
        communes=communes,
        actor=actor,
        cls=CommandClass.NORMAL,
        now=now,
        expires_at=expires_at,
        broadcast_id=None,
    )
    session.add_all(items)
    return items


def inbox_items(
    *,
    bulletin: Bulletin,
    communes: list[Area],
    actor: Actor,
    cls: CommandClass,
    now: datetime,
    expires_at: datetime | None,
    broadcast_id: str | None,
    level: SenderLevel | None = None,
) -> list[InboxItem]:
    """One item per commune; `level` the sender's (default: the actor role's)."""
    aired = broadcast_id is not None
    return [
        InboxItem(
            bulletin_id=bulletin.id,
            area_id=commune.id,
            cls=cls.value,
            sender=actor.name,
            sender_level=(level or own_level(actor)).value,
            received_at=now,
            expires_at=expires_at or bulletin.valid_until,
            status=InboxStatus.AIRED if aired else InboxStatus.PENDING,
            handled_by=actor.name if aired else None,
            handled_at=now if aired else None,
            broadcast_id=broadcast_id,
        )
        for commune in communes
    ]


def check_may_handle(actor: Actor, item: InboxItem, area: Area, now: datetime) -> None:
    require(actor, Action.INBOX)
    inside(actor, [("area", area.code, area.path)])
    if item.status != InboxStatus.PENDING:
        raise Conflict(f"this inbox item is already {item.status}", detail={"status": item.status})
    if item.expires_at is not None and now >= item.expires_at:
        raise Conflict("this bulletin's validity is over", detail={"field": "expires_at"})
