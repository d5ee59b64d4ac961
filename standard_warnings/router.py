from __future__ import annotations

import asyncio
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Path, Response, status

from core.context import Context
from core.policy import Action
from standard_warnings import service
from standard_warnings.schemas import WarningPut, WarningRead
from web.deps import ActorDep, SessionDep, get_runtime
from web.guard import allow
from web.targets import From
from wire.protocol import CODE_PATTERN


class Library(Context, Protocol):
    # Set: every cluster's document follows at the next tick (the library is in each).
    schedules_changed: asyncio.Event


LibraryDep = Annotated[Library, Depends(get_runtime)]
# The id as the wire carries it (HeldWarning.id), named `id` in a refusal.
WarningId = Annotated[str, Path(alias="id", pattern=CODE_PATTERN)]

router = APIRouter(prefix="/api/v1/warnings", tags=["standard warnings"])


@router.get("", dependencies=[allow(Action.READ, From.ANYWHERE)])
async def list_warnings(session: SessionDep) -> list[WarningRead]:
    """The province's standard warnings, by id: what every cluster holds, and what an
    emergency may name (`"warning"` in POST /api/v1/broadcasts)."""
    warnings = await service.list_all(session=session)
    return [WarningRead.model_validate(w) for w in warnings]


@router.put(
    "/{id}",
    responses={status.HTTP_201_CREATED: {"model": WarningRead, "description": "created"}},
    dependencies=[allow(Action.WARNINGS, From.PROVINCE)],
)
async def put_warning(
    warning_id: WarningId,
    data: WarningPut,
    runtime: LibraryDep,
    actor: ActorDep,
    response: Response,
) -> WarningRead:
    """Create (201) or replace (200) the warning under this id. Every cluster is pushed a
    new schedule document listing it, and fetches the clip in the background."""
    async with runtime.writing() as session:
        warning, created = await service.put(
            session=session, clock=runtime.clock, actor=actor, warning_id=warning_id, data=data
        )
        read = WarningRead.model_validate(warning)
    runtime.schedules_changed.set()
    if created:
        response.status_code = status.HTTP_201_CREATED
    return read


@router.delete(
    "/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[allow(Action.WARNINGS, From.PROVINCE)],
)
async def delete_warning(warning_id: WarningId, runtime: LibraryDep) -> None:
    """Out of the library: the next documents no longer list it."""
    async with runtime.writing() as session:
        await service.delete(session=session, warning_id=warning_id)
    runtime.schedules_changed.set()
