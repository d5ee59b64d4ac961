"""Bulletins from the central level in JSON (docs/central-api.md, "Receiving bulletins"):
the same path as a CAP alert, with the Circular 39 class given outright instead of read
from urgency, severity and certainty.

A JSON bulletin is turned into the alert it stands for and handed to the CAP intake,
so both forms share one record (`GET /api/v1/cap`), one duplicate check, the same area
mapping, speech, drills, updates and cancels: normal waits in the inbox of every commune
it names, priority and emergency go on air at once.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import select

from broadcast.context import SendingDep
from cap import intake
from cap.message import Alert, Area, CapStatus, Info, MsgType
from cap.models import JSON_SOURCE, CapMessage, CapOutcome
from cap.router import receipt
from cap.schemas import CapReceipt
from core.database import session_scope
from core.policy import Action
from web.guard import allow
from web.targets import From
from wire.protocol import CommandClass

# The CAP words that the mapping (cap/mapping.py) reads as each class.
WORDS_OF_CLASS = {
    CommandClass.EMERGENCY: ("Immediate", "Extreme", "Observed"),
    CommandClass.PRIORITY: ("Expected", "Moderate", "Likely"),
    CommandClass.NORMAL: ("Future", "Minor", "Possible"),
}
KIND_TO_MSG_TYPE = {"alert": MsgType.ALERT, "update": MsgType.UPDATE, "cancel": MsgType.CANCEL}

router = APIRouter(tags=["central"])


class CentralText(BaseModel):
    """The bulletin in one language: read aloud where a voice speaks it, else shown."""

    language: str = Field("vi", min_length=2, max_length=32)
    title: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=4000)
    instruction: str | None = Field(None, max_length=1000)


class CentralBulletin(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    identifier: str = Field(min_length=1, max_length=300)  # unique per sender
    sender: str = Field(min_length=1, max_length=300)
    sent: AwareDatetime
    cls: CommandClass = Field(alias="class")
    kind: Literal["alert", "update", "cancel"] = "alert"
    # Identifiers of this sender's earlier bulletins that an update replaces or a cancel
    # stops.
    references: list[str] = Field(default_factory=list, max_length=50)
    drill: bool = False
    topic: str = Field("general", min_length=1, max_length=32)
    areas: list[str] = Field(min_length=1, max_length=2000)  # official codes (VN-GSO)
    expires_at: AwareDatetime | None = None
    texts: list[CentralText] = Field(default_factory=list, max_length=10)  # none: a cancel

    @field_validator("texts")
    @classmethod
    def _something_to_say(cls, texts: list[CentralText], info: ValidationInfo) -> list[CentralText]:
        if not texts and info.data.get("kind", "alert") != "cancel":
            raise ValueError("an alert or an update needs at least one text")
        return texts


def to_alert(data: CentralBulletin, earlier_sent: dict[str, str]) -> Alert:
    """The CAP alert the JSON bulletin stands for; `earlier_sent` gives each referenced
    identifier's `sent` as recorded (CAP references name sender, identifier and sent)."""
    urgency, severity, certainty = WORDS_OF_CLASS[data.cls]
    area = Area(description=", ".join(data.areas), geocodes=[("VN-GSO", c) for c in data.areas])
    infos = [
        Info(
            language=t.language,
            categories=["Other"],
            event=t.title,
            urgency=urgency,
            severity=severity,
            certainty=certainty,
            headline=t.title,
            description=t.text,
            instruction=t.instruction,
            expires=data.expires_at,
            sender_name=data.sender,
            areas=[area],
            topic=data.topic,
        )
        for t in data.texts
    ]
    return Alert(
        identifier=data.identifier,
        sender=data.sender,
        sent=data.sent,
        sent_text=_sent_text(data.sent),
        status=CapStatus.EXERCISE if data.drill else CapStatus.ACTUAL,
        msg_type=KIND_TO_MSG_TYPE[data.kind],
        scope="Public",
        note=None,
        references=[
            (data.sender, i, earlier_sent[i]) for i in data.references if i in earlier_sent
        ],
        infos=infos,
    )


def _sent_text(sent: datetime) -> str:
    return sent.isoformat(timespec="seconds")


@router.post(
    "/api/v1/central/inbox",
    response_model=CapReceipt,
    dependencies=[allow(Action.SEND_EMERGENCY, From.PROVINCE)],
)
async def receive_bulletin(data: CentralBulletin, runtime: SendingDep) -> JSONResponse:
    """A bulletin from the central level. 201: acted on (aired, in the communes' inboxes,
    or a cancel carried out); 200: kept but not acted on (no area of this province, out of
    date, nothing to cancel), or a copy of one already acted on; 422: refused, with the
    reason (kept for review at GET /api/v1/cap)."""
    async with session_scope(runtime.sessions) as session:
        rows = await session.execute(
            select(CapMessage.identifier, CapMessage.sent).where(
                CapMessage.sender == data.sender,
                CapMessage.identifier.in_(data.references),
                CapMessage.outcome == CapOutcome.ACCEPTED,
            )
        )
        earlier_sent = {i: s for i, s in rows if i is not None and s is not None}
    message = CapMessage(
        id=str(uuid.uuid4()),
        source=JSON_SOURCE,
        received_at=runtime.clock.now(),
        raw=json.dumps(data.model_dump(mode="json", by_alias=True), ensure_ascii=False),
        outcome=CapOutcome.REJECTED,
    )
    outcome = await intake.receive_alert(runtime, to_alert(data, earlier_sent), message)
    return receipt(outcome, field="texts")
