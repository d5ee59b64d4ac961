"""Fleet health over HTTP: the rollup worst first, one cluster's page, CSV for the office."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast.context import SendingDep
from core.database import session_scope
from core.policy import Action
from core.schemas import BigId
from health import alarms, operations, repository, self_test, service
from health.models import Operation
from health.schemas import (
    AlarmRead,
    AreaHealth,
    ClusterHealthRead,
    OperationCreate,
    OperationRead,
    SelfTestReport,
)
from web.deps import ActorDep, SessionDep, WriteSessionDep
from web.guard import allow
from web.targets import Asked, From, Resolver, Targets, stored

router = APIRouter(tags=["health"])


async def _alarm_targets(session: AsyncSession, asked: Asked) -> Targets:
    code = await repository.alarm_cluster_code(session, asked.path_id("alarm_id"))
    return Targets([], [code] if code else [])


# How the guard finds what an operation or an alarm in the path touches (registered in
# app/main.py).
TARGETS: dict[From, Resolver] = {
    From.OPERATION: stored(Operation, "operation_id"),
    From.ALARM: _alarm_targets,
}


@router.get("/api/v1/health", dependencies=[allow(Action.READ, From.QUERY_AREA)])
async def area_health(
    session: SessionDep,
    runtime: SendingDep,
    area: Annotated[str, Query(description="the area (its subtree); its children follow")],
) -> list[AreaHealth]:
    """The area itself first, then each child area, the worst first."""
    return await service.rollup(session=session, settings=runtime.settings, area_code=area)


@router.get(
    "/api/v1/health/export.csv",
    response_class=PlainTextResponse,
    dependencies=[allow(Action.READ, From.QUERY_AREA)],
)
async def export_health(
    session: SessionDep, runtime: SendingDep, area: Annotated[str, Query()]
) -> PlainTextResponse:
    text = await service.export_csv(session=session, settings=runtime.settings, area_code=area)
    return PlainTextResponse(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="health-{area}.csv"'},
    )


@router.get("/api/v1/clusters/{code}/health", dependencies=[allow(Action.READ, From.CLUSTER_PATH)])
async def cluster_health(
    code: str,
    session: SessionDep,
    runtime: SendingDep,
    history: Annotated[int, Query(ge=0, le=2000, description="samples, newest first")] = 96,
) -> ClusterHealthRead:
    return await service.cluster_health(
        session=session, settings=runtime.settings, code=code, history=history
    )


@router.get("/api/v1/alarms", dependencies=[allow(Action.READ, From.QUERY_AREA)])
async def list_alarms(
    session: SessionDep,
    area: Annotated[str | None, Query(description="only clusters in this subtree")] = None,
    cluster: str | None = None,
    kind: str | None = None,
    open_only: Annotated[bool, Query(alias="open", description="false: the whole record")] = True,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Sequence[AlarmRead]:
    """Newest first."""
    return await alarms.listing(
        session,
        area_code=area,
        cluster_code=cluster,
        open_only=open_only,
        kind=kind,
        limit=limit,
    )


@router.post(
    "/api/v1/alarms/{alarm_id}/acknowledge", dependencies=[allow(Action.OPERATE, From.ALARM)]
)
async def acknowledge_alarm(
    alarm_id: BigId, session: WriteSessionDep, runtime: SendingDep, actor: ActorDep
) -> AlarmRead:
    """A person has seen it: who and when are kept (the first acknowledgement stands)."""
    return await alarms.acknowledge(
        session, alarm_id=alarm_id, who=actor.name, now=runtime.clock.now()
    )


@router.post(
    "/api/v1/operations",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.OPERATE, From.BODY_TARGETS)],
)
async def create_operation(
    data: OperationCreate, runtime: SendingDep, actor: ActorDep
) -> OperationRead:
    """A remote command to areas and/or clusters; each cluster's result follows at
    GET /api/v1/operations/{id}. Committed before it is published: with the broker down it
    still answers 201, `published: false` (send it again when the broker is back)."""
    async with runtime.writing() as session:
        created = await operations.create(
            session=session,
            settings=runtime.settings,
            data=data,
            actor=actor,
            now=runtime.clock.now(),
        )
    published = await runtime.require_dispatcher().publish_commands(
        created.operation.id, created.publications
    )
    async with session_scope(runtime.sessions) as session:
        read = await operations.read(session=session, operation_id=created.operation.id)
    return read.model_copy(update={"published": published})


@router.get("/api/v1/operations/{operation_id}", dependencies=[allow(Action.READ, From.OPERATION)])
async def read_operation(operation_id: str, session: SessionDep) -> OperationRead:
    return await operations.read(session=session, operation_id=operation_id)


@router.post(
    "/api/v1/self-test",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.OPERATE, From.PROVINCE)],
)
async def run_self_test(runtime: SendingDep) -> dict[str, str]:
    """Start the silent self-test of every cluster now (it also runs daily at
    SELF_TEST_AT); results at GET /api/v1/self-test/report."""
    return {"operation_id": await self_test.start(runtime)}


@router.get("/api/v1/self-test/report", dependencies=[allow(Action.READ, From.QUERY_AREA)])
async def self_test_report(
    session: SessionDep, area: Annotated[str, Query(description="province, district or commune")]
) -> SelfTestReport:
    """By commune, every cluster that would not have played an emergency in the latest
    self-test: failed (with the reason) or silent."""
    return await self_test.report(session=session, area_code=area)
