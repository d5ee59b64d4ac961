"""Writing and reading the audit log."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from audit.models import AuditEvent, AuditOutcome
from audit.schemas import AuditRead
from core.paging import paged

CSV_COLUMNS = (
    "at",
    "actor",
    "role",
    "area",
    "address",
    "action",
    "target",
    "outcome",
    "status",
    "detail",
)


def event(
    *,
    at: datetime,
    actor: str,
    action: str,
    outcome: AuditOutcome,
    role: str = "",
    area: str | None = None,
    address: str = "",
    target: str = "",
    status: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent(
        at=at,
        actor=actor[:100],
        role=role,
        area=area,
        address=address[:64],
        action=action[:100],
        target=target[:300],
        outcome=outcome,
        status=status,
        detail=detail or {},
    )


def _filtered(
    query: Select[Any],
    *,
    actor: str | None,
    action: str | None,
    outcome: str | None,
    since: datetime | None,
    until: datetime | None,
    text: str | None,
) -> Select[Any]:
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action.contains(action))
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    if text:
        like = f"%{text}%"
        query = query.where(or_(AuditEvent.target.like(like), AuditEvent.action.like(like)))
    return query


async def search(
    session: AsyncSession, *, limit: int, offset: int, **filters: Any
) -> tuple[list[AuditRead], int]:
    """Newest first."""
    query = _filtered(select(AuditEvent), **filters)
    rows, total = await paged(
        session,
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()),
        limit=limit,
        offset=offset,
    )
    return [AuditRead.model_validate(r, from_attributes=True) for (r,) in rows], total


async def export_csv(session: AsyncSession, **filters: Any) -> str:
    rows: Sequence[AuditEvent] = (
        await session.scalars(
            _filtered(select(AuditEvent), **filters).order_by(AuditEvent.at, AuditEvent.id)
        )
    ).all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.at.isoformat(),
                r.actor,
                r.role,
                r.area or "",
                r.address,
                r.action,
                r.target,
                r.outcome,
                r.status or "",
                r.detail or "",
            ]
        )
    return out.getvalue()
