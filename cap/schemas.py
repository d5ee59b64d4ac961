from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from core.schemas import ORMModel


class CapMessageRead(ORMModel):
    id: str
    sender: str | None
    identifier: str | None
    sent: str | None
    status: str | None
    msg_type: str | None
    source: str
    received_at: datetime
    outcome: str  # accepted | held | ignored | rejected
    reason: str | None
    drill: bool
    broadcast_id: str | None
    ack_sent_at: datetime | None


class CapMessageFull(CapMessageRead):
    raw: str


class CapReceipt(CapMessageRead):
    """The answer to a POST: the record, and whether it was a copy of one already acted on
    (then nothing was done again)."""

    duplicate: bool = False


class CapFeedResult(BaseModel):
    feed: str
    read: int
    new: int
    error: str | None = None
