"""The authority check lives below the routes: the services refuse on their own, so a
route (or a console page, a CLI command, a job) that forgot its guard still cannot air,
stop or change anything it may not."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from authority import Refused
from broadcast import sending
from broadcast import service as broadcast_service
from broadcast.schemas import BroadcastCreate
from bulletins import airing
from bulletins import service as bulletin_service
from core.actors import Actor, Role
from firmware import rollouts
from firmware.schemas import RolloutCreate
from health import operations
from health.schemas import OperationCreate
from schedules import service as schedule_service
from schedules.schemas import ScheduleCreate, ScheduleUpdate
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack

ROOT = Path(__file__).resolve().parents[2]
# What puts sound on air or decides what clusters do: each row written in a function
# that asks the authority check first.
GUARDED_ROWS = {"Broadcast", "Schedule", "Rollout"}


def test_every_writer_of_what_airs_asks_the_authority_first() -> None:
    writers = []
    for path in ROOT.glob("*/**/*.py"):
        top = path.parts[len(ROOT.parts)]
        if top in ("tests", "migrations") or top.startswith("."):  # .venv, .venv-3.13
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            called = {
                node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                for node in ast.walk(function)
                if isinstance(node, ast.Call)
            }
            for row in GUARDED_ROWS & called:
                writers.append((path.relative_to(ROOT).as_posix(), function.name, row))
                checked = any(name.startswith("authorise") for name in called)
                assert checked, f"{path}: {function.name} writes {row} unchecked"
    assert {row for _, _, row in writers} == GUARDED_ROWS  # the check found them


@pytest.fixture
async def ready(stack: Stack, tone_mp3: Path) -> dict[str, str]:
    await small_province(stack)
    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, media_sha256=media["sha256"])
    return {"bulletin": bulletin["id"]}


COMMUNE_OPERATOR = Actor("xa.vien", Role.COMMUNE_OPERATOR, "25216")


async def test_the_services_refuse_without_any_route(stack: Stack, ready: dict[str, str]) -> None:
    runtime = stack.runtime
    base = {"title": "Lũ", "areas": ["25216"], "bulletin_id": ready["bulletin"]}

    def made(**changes: object) -> BroadcastCreate:
        return BroadcastCreate.model_validate({**base, **changes})

    emergency = made(**{"class": "emergency"})
    with pytest.raises(Refused) as refused:
        await sending.send(runtime, emergency, COMMUNE_OPERATOR)
    assert refused.value.detail == {
        "missing": "role",
        "role": "commune_operator",
        "needs": "broadcast.emergency",
        "field": "class",
    }
    above = made(**{"class": "priority", "level": "province"})
    with pytest.raises(Refused, match="commune level, not province"):
        await sending.send(runtime, above, COMMUNE_OPERATOR)
    elsewhere = made(**{"class": "normal", "areas": ["25231"]})
    with pytest.raises(Refused, match="25231 is outside"):
        await sending.send(runtime, elsewhere, COMMUNE_OPERATOR)

    # The province's broadcast in the commune: the commune cannot stop it.
    provinces = await sending.send(
        runtime, made(**{"class": "priority"}), Actor("trucban", Role.ADMIN)
    )
    async with runtime.writing() as session:
        with pytest.raises(Refused, match="province level sent"):
            await broadcast_service.cancel(
                session=session,
                clock=runtime.clock,
                settings=runtime.settings,
                broadcast_id=provinces.id,
                actor=COMMUNE_OPERATOR,
            )

    starts = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None)
    async with runtime.writing() as session:
        schedule, _ = await schedule_service.create(
            session=session,
            clock=runtime.clock,
            settings=runtime.settings,
            actor=Actor("trucban", Role.ADMIN),
            data=ScheduleCreate.model_validate(
                {
                    "title": "Tin tỉnh",
                    "bulletin_id": ready["bulletin"],
                    "starts_local": starts.isoformat(),
                    "areas": ["25216"],
                }
            ),
        )
        assert schedule.level == "province"  # the sender's own, from the role
        with pytest.raises(Refused, match="province level sent"):
            await schedule_service.update(
                session=session,
                clock=runtime.clock,
                settings=runtime.settings,
                schedule_id=schedule.id,
                data=ScheduleUpdate(status="ended"),
                actor=COMMUNE_OPERATOR,
            )
        with pytest.raises(Refused, match="may not command clusters"):
            await operations.create(
                session=session,
                settings=runtime.settings,
                data=OperationCreate.model_validate(
                    {"kind": "test_tone", "params": {"seconds": 1}, "areas": ["25216"]}
                ),
                actor=COMMUNE_OPERATOR,
                now=runtime.clock.now(),
            )
        with pytest.raises(Refused, match="may not roll out firmware"):
            await rollouts.create(
                session=session,
                data=RolloutCreate.model_validate({"firmware": "1.0", "areas": ["25216"]}),
                actor=COMMUNE_OPERATOR,
                now=runtime.clock.now(),
            )
        bulletin = await bulletin_service.get(session=session, bulletin_id=ready["bulletin"])
        communes = await airing.communes_under(session, ["25231"])
        with pytest.raises(Refused, match="25231 is outside"):
            await airing.offer_to_inboxes(
                session,
                bulletin=bulletin,
                communes=communes,
                actor=COMMUNE_OPERATOR,
                now=runtime.clock.now(),
                expires_at=None,
            )
