"""The audit log, read-only: search it, export it. Nothing here changes or deletes it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from audit import service
from audit.schemas import AuditRead
from core.policy import Action
from core.schemas import Limit, Offset, Page
from web.deps import SessionDep
from web.guard import allow
from web.targets import From

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def _filters(
    actor: str | None = None,
    action: Annotated[str | None, Query(description="part of it: 'broadcasts', 'login'")] = None,
    outcome: Annotated[str | None, Query(description="ok | denied | refused | failed")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: Annotated[str | None, Query(description="text in the target or action")] = None,
) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": action,
        "outcome": outcome,
        "since": since,
        "until": until,
        "text": q,
    }


Filters = Annotated[dict[str, Any], Depends(_filters)]


@router.get("", dependencies=[allow(Action.AUDIT, From.PROVINCE)])
async def search_audit(
    session: SessionDep, filters: Filters, limit: Limit = 50, offset: Offset = 0
) -> Page[AuditRead]:
    """Newest first."""
    items, total = await service.search(session, limit=limit, offset=offset, **filters)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/export.csv",
    response_class=PlainTextResponse,
    dependencies=[allow(Action.AUDIT, From.PROVINCE)],
)
async def export_audit(session: SessionDep, filters: Filters) -> PlainTextResponse:
    text = await service.export_csv(session, **filters)
    return PlainTextResponse(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
