from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, UploadFile, status

from areas import service
from areas.schemas import AreaCreate, AreaRead, AreaUpdate
from broadcast.context import SendingDep
from core.policy import Action
from core.schemas import ImportReport, Limit, Offset, Page
from core.uploads import read_csv_upload
from health.moving import register_writing
from web.deps import ActorDep, RuntimeDep, SessionDep, WriteSessionDep
from web.guard import allow
from web.targets import From

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.REGISTRY, From.BODY_TARGETS)],
)
async def create_area(data: AreaCreate, session: WriteSessionDep, runtime: RuntimeDep) -> AreaRead:
    return await service.create(session=session, clock=runtime.clock, data=data)


@router.get("", dependencies=[allow(Action.READ, From.QUERY_AREA)])
async def list_areas(
    session: SessionDep,
    under: Annotated[str | None, Query(description="only this area's subtree")] = None,
    parent: Annotated[str | None, Query(description="only direct children")] = None,
    level: str | None = None,
    dissolved: Annotated[
        bool, Query(description="also the units a reorganisation dissolved (history)")
    ] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AreaRead]:
    return await service.list_page(
        session=session,
        under=under,
        parent=parent,
        level=level,
        limit=limit,
        offset=offset,
        dissolved=dissolved,
    )


@router.post("/import", dependencies=[allow(Action.REGISTRY, From.PROVINCE)])
async def import_areas(file: UploadFile, runtime: SendingDep, actor: ActorDep) -> ImportReport:
    """A row that gives an area another parent moves it as a PATCH does (set_areas)."""
    text = await read_csv_upload(file)
    # Reads, then writes, in one transaction: under the write lock, or SQLite refuses the
    # write at once ("database is locked") when a background job wrote in between.
    async with register_writing(runtime, actor=actor.name) as session:
        return await service.import_csv(session=session, clock=runtime.clock, text=text)


@router.get("/{code}", dependencies=[allow(Action.READ, From.AREA_PATH)])
async def read_area(code: str, session: SessionDep) -> AreaRead:
    return await service.read(session=session, code=code)


@router.patch("/{code}", dependencies=[allow(Action.REGISTRY, From.AREA_PATH)])
async def update_area(
    code: str, data: AreaUpdate, runtime: SendingDep, actor: ActorDep
) -> AreaRead:
    """A new parent moves the area's subtree: every cluster under it is told its new areas
    (a signed set_areas, after the commit) and named on its own topic until it confirms
    (docs/protocol.md 4.6)."""
    async with register_writing(runtime, actor=actor.name) as session:
        return await service.update(session=session, code=code, data=data)


@router.delete(
    "/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[allow(Action.REGISTRY, From.AREA_PATH)],
)
async def delete_area(code: str, session: WriteSessionDep) -> None:
    await service.delete(session=session, code=code)
