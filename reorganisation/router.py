"""`POST /api/v1/areas/reorganise`: the plan (a dry run, the default) or its application,
for administrators. The same as `broadcast areas reorganise`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from broadcast.commands import Publication
from broadcast.context import SendingDep
from core.database import session_scope
from core.policy import Action
from devices import broker_auth
from reorganisation.apply import apply
from reorganisation.official import VietnamProvinces
from reorganisation.plan import Plan, build
from web.deps import ActorDep
from web.guard import allow
from web.targets import From

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])


class ReorganiseRequest(BaseModel):
    effective: date = Field(description="the day the new units exist (2025-07-01)")
    dry_run: bool = Field(default=True, description="only say what would change")


class ReorganiseAnswer(BaseModel):
    effective: date
    province: str
    dry_run: bool
    summary: dict[str, int]
    rows: list[tuple[str, str, str, str]]  # (what, item, from, to)
    steps_applied: list[str] = []


def answer(plan: Plan, *, dry_run: bool, steps: list[str] | None = None) -> ReorganiseAnswer:
    return ReorganiseAnswer(
        effective=plan.effective,
        province=f"{plan.province.code} {plan.province.name}",
        dry_run=dry_run,
        summary=plan.summary(),
        rows=plan.rows(),
        steps_applied=steps or [],
    )


@router.post("/reorganise", dependencies=[allow(Action.REGISTRY, From.PROVINCE)])
async def reorganise(
    data: ReorganiseRequest,
    runtime: SendingDep,
    actor: ActorDep,
    format: Annotated[Literal["json", "csv"], Query(description="csv: the plan's table")] = "json",
) -> Any:
    """The official conversion applied to the register: areas created and dissolved (never
    deleted), clusters re-homed, accounts re-scoped, schedules moved; every step in the
    audit log. A dry run changes nothing; applying twice changes nothing the second time."""
    official = VietnamProvinces()
    if data.dry_run:
        async with session_scope(runtime.sessions) as session:
            plan = await build(session, official, data.effective)
        if format == "csv":
            return PlainTextResponse(plan.csv(), media_type="text/csv")
        return answer(plan, dry_run=True)

    async def follow(step: str) -> None:
        if step == "clusters":  # the broker's access lists follow the clusters
            async with session_scope(runtime.sessions) as session:
                await broker_auth.sync(session, runtime.settings)

    async def tell(publications: list[Publication]) -> bool:
        return await runtime.require_dispatcher().publish_commands("set_areas", publications)

    applied = await apply(
        runtime.sessions,
        runtime.writing,
        runtime.clock,
        runtime.settings,
        official,
        data.effective,
        actor=actor.name,
        after_step=follow,
        publish=tell,
    )
    if format == "csv":
        return Response(applied.plan.csv(), media_type="text/csv")
    return answer(applied.plan, dry_run=False, steps=applied.steps)
