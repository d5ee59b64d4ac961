from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, UTCDateTime


class AuditOutcome(StrEnum):
    """How a recorded act ended (AuditEvent.outcome)."""

    OK = "ok"
    DENIED = "denied"  # 401, 403, 423, 429: not who they said, or not allowed
    REFUSED = "refused"  # another 4xx: the request itself was wrong
    FAILED = "failed"  # 5xx: ours
    ALARM = "alarm"  # someone keeps guessing a password (accounts/router.py)


class AuditEvent(Base):
    """One thing someone did or tried. Rows are only ever added: the database itself
    refuses to change or delete them (triggers, audit/append_only.py)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(100))  # a person, "anonymous", or a cluster code
    role: Mapped[str] = mapped_column(String(32), default="")
    area: Mapped[str | None] = mapped_column(String(64))  # the actor's scope
    address: Mapped[str] = mapped_column(String(64), default="")  # client IP, or "mqtt"
    action: Mapped[str] = mapped_column(String(100))  # "POST /api/v1/broadcasts", "login"...
    target: Mapped[str] = mapped_column(String(300), default="")
    outcome: Mapped[str] = mapped_column(String(16))  # AuditOutcome
    status: Mapped[int | None] = mapped_column(Integer)  # the HTTP status answered
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor_at", "actor", "at"),
    )
