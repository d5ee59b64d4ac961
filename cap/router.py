"""CAP 1.2 over HTTP: alerts in (POST the XML), the review list of what arrived, a
broadcast out as CAP, and the Ack of a received alert (docs/cap.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from broadcast.context import SendingDep
from broadcast.models import Broadcast
from bulletins.models import Bulletin
from cap import export, intake
from cap.models import CapMessage, CapOutcome
from cap.schemas import CapMessageFull, CapMessageRead, CapReceipt
from core.errors import Conflict, NotFound
from core.paging import paged
from core.policy import Action
from core.schemas import Limit, Offset, Page
from web.deps import SessionDep
from web.guard import allow
from web.targets import From

router = APIRouter(tags=["cap"])
CAP_XML = "application/cap+xml"
# held: kept for a person to act on (a severe alert in a language no voice here speaks)
STATUS_OF_OUTCOME: dict[str, int] = {
    CapOutcome.ACCEPTED: 201,
    CapOutcome.HELD: 202,
    CapOutcome.IGNORED: 200,
    CapOutcome.REJECTED: 422,
}


@router.post(
    "/api/v1/cap",
    response_model=CapReceipt,
    dependencies=[allow(Action.SEND_EMERGENCY, From.PROVINCE)],
    openapi_extra={
        "requestBody": {"content": {CAP_XML: {}, "application/xml": {}}, "required": True}
    },
)
async def receive_alert(request: Request, runtime: SendingDep) -> JSONResponse:
    """A CAP 1.2 message (the XML as the body). 201: acted on (aired, in the communes'
    inboxes, or a cancel carried out); 202: held for the duty officer (no voice here
    speaks its language: they voice it in Vietnamese); 200: kept but not for airing here (not our area,
    a draft, expired), or a copy of one already acted on; 422: refused, with the reason,
    and kept for review at GET /api/v1/cap."""
    raw = await request.body()
    return receipt(await intake.receive(runtime, raw, source="http"), field="body")


def receipt(outcome: intake.Outcome, *, field: str) -> JSONResponse:
    """The record of what arrived: 201 acted on, 200 kept or a copy (`duplicate`), 422
    refused, with the reason and `field` named as the error."""
    body = (
        CapReceipt.model_validate(outcome.message)
        .model_copy(update={"duplicate": outcome.duplicate})
        .model_dump(mode="json")
    )
    status = 200 if outcome.duplicate else STATUS_OF_OUTCOME[outcome.message.outcome]
    if outcome.message.outcome == CapOutcome.REJECTED:
        named = outcome.refused_field if outcome.refused_field not in (None, "body") else field
        body = {"error": outcome.message.reason, "detail": {"field": named}, **body}
    return JSONResponse(body, status_code=status)


@router.get("/api/v1/cap", dependencies=[allow(Action.READ, From.PROVINCE)])
async def list_messages(
    session: SessionDep,
    outcome: Annotated[str | None, Query(pattern="^(accepted|held|ignored|rejected)$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[CapMessageRead]:
    """Every CAP message received, newest first: the refused ones are for review."""
    query = select(CapMessage)
    if outcome:
        query = query.where(CapMessage.outcome == outcome)
    rows, total = await paged(
        session,
        query.order_by(CapMessage.received_at.desc(), CapMessage.id),
        limit=limit,
        offset=offset,
    )
    items = [CapMessageRead.model_validate(m) for (m,) in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


async def _message(session: SessionDep, message_id: str) -> CapMessage:
    message = await session.get(CapMessage, message_id)
    if message is None:
        raise NotFound(f"no CAP message {message_id!r}", detail={"message": message_id})
    return message


@router.get("/api/v1/cap/{message_id}", dependencies=[allow(Action.READ, From.PROVINCE)])
async def read_message(message_id: str, session: SessionDep) -> CapMessageFull:
    """One message with the XML as it arrived."""
    return CapMessageFull.model_validate(await _message(session, message_id))


@router.get("/api/v1/cap/{message_id}/ack", dependencies=[allow(Action.READ, From.PROVINCE)])
async def message_ack(message_id: str, session: SessionDep, runtime: SendingDep) -> Response:
    """A CAP Ack referencing the message, with what became of it (for the sender)."""
    message = await _message(session, message_id)
    if message.identifier is None:
        raise Conflict("the message could not be read: there is nothing to reference")
    body = await export.ack(session, runtime.settings, message, runtime.clock.now())
    return Response(body, media_type=CAP_XML)


@router.get(
    "/api/v1/broadcasts/{broadcast_id}/cap", dependencies=[allow(Action.READ, From.BROADCAST)]
)
async def broadcast_as_cap(broadcast_id: str, session: SessionDep, runtime: SendingDep) -> Response:
    """The broadcast as a CAP 1.2 alert (valid against the OASIS schema)."""
    topic = await session.scalar(
        select(Bulletin.topic)
        .join(Broadcast, Broadcast.bulletin_id == Bulletin.id)
        .where(Broadcast.id == broadcast_id)
    )
    body = await export.broadcast_alert(session, runtime.settings, broadcast_id, topic)
    return Response(body, media_type=CAP_XML)
