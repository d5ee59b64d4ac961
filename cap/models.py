from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, UTCDateTime

# `source` of a bulletin the central level sent as JSON (central/inbound.py): its sender
# reads the record, so no CAP Ack goes back for it.
JSON_SOURCE = "central-json"


class CapOutcome(StrEnum):
    """What was done with a CAP message (CapMessage.outcome)."""

    ACCEPTED = "accepted"  # aired, or a cancel/update carried out
    HELD = "held"  # a severe alert no voice here speaks: kept for the duty officer to voice
    IGNORED = "ignored"  # not for us, a draft, out of date
    REJECTED = "rejected"  # malformed, invalid, unsigned where required


class CapMessage(Base):
    """Every CAP message received, kept as it arrived (refused ones too, for review) with
    what was done with it: the broadcast it became, or why not."""

    __tablename__ = "cap_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Its identity (sender, identifier, sent), absent when it could not be read at all.
    sender: Mapped[str | None] = mapped_column(String(300))
    identifier: Mapped[str | None] = mapped_column(String(300))
    sent: Mapped[str | None] = mapped_column(String(40))  # as written: references quote it
    status: Mapped[str | None] = mapped_column(String(16))
    msg_type: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(500))  # "http" or the feed's URL
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(16))  # CapOutcome
    reason: Mapped[str | None] = mapped_column(Text)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    broadcast_id: Mapped[str | None] = mapped_column(ForeignKey("broadcasts.id"))
    # The bulletin it became (aired, in the communes' inboxes, or held for a person): a
    # Cancel or Update withdraws what of it still waits in the inboxes.
    bulletin_id: Mapped[str | None] = mapped_column(String(36))
    raw: Mapped[str] = mapped_column(Text)
    ack_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_cap_messages_identity", "sender", "identifier", "sent"),
        Index("ix_cap_messages_received_at", "received_at"),
    )
