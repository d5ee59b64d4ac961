from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from areas import service as area_service
from broadcast import sending
from broadcast.context import Sending, SendingDep
from broadcast.models import Broadcast
from broadcast.schemas import BroadcastCreate
from bulletins import airing, inbox, service
from bulletins.schemas import (
    BulletinCreate,
    BulletinRead,
    BulletinUpdate,
    DistributeRequest,
    DistributeResult,
    InboxDecision,
    InboxItemRead,
    TransitionRequest,
)
from bulletins.workflow import Action, InboxStatus, Status
from core.database import session_scope
from core.errors import InvalidInput
from core.policy import Action as Can
from core.schemas import BigId, Limit, Offset, Page
from media.tts import speech
from media.tts.engine import UnsupportedLanguage
from web.deps import ActorDep, SessionDep
from web.guard import allow
from web.targets import From
from wire.protocol import CommandClass

router = APIRouter(tags=["bulletins"])


async def _spoken(runtime: Sending, text: str | None, language: str) -> str:
    """Text-only bulletins are read aloud now, so the editors hear what will air."""
    try:
        media = await speech.speak(runtime.ingest_context(), text=text or "", language=language)
    except UnsupportedLanguage as exc:
        # Here the way out is a recording: name that field.
        raise InvalidInput(f"{exc.message}", detail={"field": "media_sha256"}) from None
    return media.sha256


@router.post(
    "/api/v1/bulletins",
    status_code=status.HTTP_201_CREATED,
    response_model_by_alias=True,
    dependencies=[allow(Can.BULLETIN, From.ANYWHERE)],
)
async def create_bulletin(
    data: BulletinCreate, runtime: SendingDep, actor: ActorDep
) -> BulletinRead:
    """A new draft in the library: a recording, a relay source, or text read aloud."""
    if data.stream_url is not None and (
        why := runtime.settings.relay_problem(str(data.stream_url))
    ):
        raise InvalidInput(why, detail={"field": "stream_url"})
    spoken = None
    if data.media_sha256 is None and data.stream_url is None:
        spoken = await _spoken(runtime, data.text, data.language)
    async with runtime.writing() as session:
        bulletin = await service.create(
            session=session, clock=runtime.clock, actor=actor, data=data, spoken_sha256=spoken
        )
        return await service.to_read(session, bulletin)


@router.get(
    "/api/v1/bulletins",
    response_model_by_alias=True,
    dependencies=[allow(Can.READ, From.ANYWHERE)],
)
async def list_bulletins(
    session: SessionDep,
    actor: ActorDep,
    status: Status | None = None,
    topic: str | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[BulletinRead]:
    """The library (`status=submitted` is the editorial queue), newest first."""
    rows, total = await service.list_page(
        session=session,
        actor=actor,
        status=status,
        topic=topic,
        search=q,
        limit=limit,
        offset=offset,
    )
    items = [await service.to_read(session, b, with_history=False) for b in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/api/v1/bulletins/{bulletin_id}",
    response_model_by_alias=True,
    dependencies=[allow(Can.READ, From.ANYWHERE)],
)
async def read_bulletin(bulletin_id: str, session: SessionDep, actor: ActorDep) -> BulletinRead:
    bulletin = await service.get(session=session, bulletin_id=bulletin_id)
    await service.check_visible(session, actor, bulletin)
    return await service.to_read(session, bulletin)


@router.patch(
    "/api/v1/bulletins/{bulletin_id}",
    response_model_by_alias=True,
    dependencies=[allow(Can.BULLETIN, From.ANYWHERE)],
)
async def edit_bulletin(
    bulletin_id: str, data: BulletinUpdate, runtime: SendingDep, actor: ActorDep
) -> BulletinRead:
    spoken = None
    if data.text is not None and data.media_sha256 is None:
        async with session_scope(runtime.sessions) as session:
            current = await service.get(session=session, bulletin_id=bulletin_id)
            respeak = current.spoken or current.media_sha256 is None
            language = current.language
        if respeak and current.stream_url is None:
            spoken = await _spoken(runtime, data.text, language)
    async with runtime.writing() as session:
        bulletin = await service.update(
            session=session,
            clock=runtime.clock,
            actor=actor,
            bulletin_id=bulletin_id,
            data=data,
            spoken_sha256=spoken,
        )
        return await service.to_read(session, bulletin)


@router.post(
    "/api/v1/bulletins/{bulletin_id}/distribute",
    response_model=DistributeResult,
    dependencies=[allow(Can.DISTRIBUTE, From.BODY_TARGETS)],
)
async def distribute(
    bulletin_id: str, data: DistributeRequest, runtime: SendingDep, actor: ActorDep
) -> DistributeResult:
    """Send a bulletin down to every commune under `areas`. Normal: it waits in each
    commune's inbox for the operator to accept or decline. Priority and emergency: on air
    at once (priority ahead of what waits on the clusters, emergency cutting in), and the
    inboxes record that it aired."""
    async with session_scope(runtime.sessions) as session:
        bulletin = await service.get(session=session, bulletin_id=bulletin_id)
        await airing.check_may_distribute(session, actor, bulletin, data)
        communes = await airing.communes_under(session, data.areas)
    if not communes:
        raise InvalidInput("no communes under the given areas", detail={"field": "areas"})
    if data.cls is CommandClass.NORMAL:
        async with runtime.writing() as session:
            items = await airing.offer_to_inboxes(
                session,
                bulletin=await service.get(session=session, bulletin_id=bulletin_id),
                communes=communes,
                actor=actor,
                now=runtime.clock.now(),
                expires_at=data.expires_at,
            )
        return DistributeResult(communes=len(communes), inbox_items=len(items))

    async def record_in_inboxes(session: AsyncSession, broadcast: Broadcast) -> None:
        target = await service.get(session=session, bulletin_id=bulletin_id)
        session.add_all(
            airing.inbox_items(
                bulletin=target,
                communes=communes,
                actor=actor,
                cls=data.cls,
                now=broadcast.created_at,
                expires_at=broadcast.expires_at,
                broadcast_id=broadcast.id,
            )
        )

    sent = await sending.send(
        runtime,
        BroadcastCreate.model_validate(
            {
                "title": bulletin.title,
                "class": data.cls,
                "areas": [c.code for c in communes],
                "bulletin_id": bulletin_id,
                "expires_at": data.expires_at,
            }
        ),
        actor,
        also=record_in_inboxes,
    )
    return DistributeResult(communes=len(communes), inbox_items=len(communes), broadcast_id=sent.id)


@router.post(
    "/api/v1/bulletins/{bulletin_id}/{action}",
    response_model_by_alias=True,
    dependencies=[allow(Can.BULLETIN, From.ANYWHERE)],
)
async def move_bulletin(
    bulletin_id: str,
    action: Action,
    runtime: SendingDep,
    actor: ActorDep,
    data: TransitionRequest | None = None,
) -> BulletinRead:
    """submit, withdraw, approve, reject (with a note saying why), revise, archive."""
    async with runtime.writing() as session:
        bulletin = await service.transition(
            session=session,
            clock=runtime.clock,
            actor=actor,
            bulletin_id=bulletin_id,
            action=action,
            note=data.note if data else None,
        )
        return await service.to_read(session, bulletin)


@router.get(
    "/api/v1/inbox",
    response_model_by_alias=True,
    dependencies=[allow(Can.READ, From.QUERY_AREA_OR_OWN)],
)
async def read_inbox(
    session: SessionDep,
    actor: ActorDep,
    area: str | None = None,
    status: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[InboxItemRead]:
    """What has arrived from above for a commune (or every commune in the actor's scope)
    and what each did with it; pending first, newest first."""
    code = area or actor.area
    scope = await area_service.get(session=session, code=code) if code else None
    rows, total = await inbox.list_page(
        session, scope=scope, status=status, limit=limit, offset=offset
    )
    items = [await inbox.to_read(session, item, b, a) for item, b, a in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.post(
    "/api/v1/inbox/{item_id}/accept",
    response_model_by_alias=True,
    dependencies=[allow(Can.INBOX, From.ANYWHERE)],
)
async def accept_inbox_item(
    item_id: BigId, runtime: SendingDep, actor: ActorDep, data: InboxDecision | None = None
) -> InboxItemRead:
    """The commune puts a bulletin from above on air for its own clusters."""
    async with session_scope(runtime.sessions) as session:
        item, bulletin, area = await inbox.get(session, item_id)
        airing.check_may_handle(actor, item, area, runtime.clock.now())

    async def mark_accepted(session: AsyncSession, broadcast: Broadcast) -> None:
        await inbox.decide(
            session,
            item_id,
            actor=actor,
            status=InboxStatus.ACCEPTED,
            at=broadcast.created_at,
            note=data.note if data else None,
            broadcast_id=broadcast.id,
        )

    await sending.send(
        runtime,
        BroadcastCreate.model_validate(
            {
                "title": bulletin.title,
                "class": CommandClass.NORMAL,
                "level": "commune",
                "areas": [area.code],
                "bulletin_id": bulletin.id,
                "expires_at": item.expires_at,
            }
        ),
        actor,
        also=mark_accepted,
    )
    async with session_scope(runtime.sessions) as session:
        return await inbox.to_read(session, *await inbox.get(session, item_id))


@router.post(
    "/api/v1/inbox/{item_id}/decline",
    response_model_by_alias=True,
    dependencies=[allow(Can.INBOX, From.ANYWHERE)],
)
async def decline_inbox_item(
    item_id: BigId, runtime: SendingDep, actor: ActorDep, data: InboxDecision | None = None
) -> InboxItemRead:
    async with runtime.writing() as session:
        item, _, area = await inbox.get(session, item_id)
        airing.check_may_handle(actor, item, area, runtime.clock.now())
        await inbox.decide(
            session,
            item_id,
            actor=actor,
            status=InboxStatus.DECLINED,
            at=runtime.clock.now(),
            note=data.note if data else None,
            broadcast_id=None,
        )
        return await inbox.to_read(session, *await inbox.get(session, item_id))
