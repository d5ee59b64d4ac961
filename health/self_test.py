"""The daily silent self-test: every cluster verifies the whole path an emergency would
take (a signed command received and checked, the clip fetched and its sha256 checked,
the amplifier answering, lines and relay sound) without making a sound, and the morning
report lists, by commune, every cluster that would not have played an emergency.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from areas import service as area_service
from areas.models import Area
from core.actors import Actor, Role
from core.settings import Settings
from devices.models import Cluster
from health import operations
from health.models import Operation, OperationResult
from health.schemas import OperationCreate, SelfTestCommune, SelfTestFailure, SelfTestReport
from media.tts import speech
from schedules.recurrence import zone
from wire.protocol import CommandKind

if TYPE_CHECKING:
    from broadcast.context import Sending

# Spoken into the clip every cluster fetches (never played): a real file through the real
# pipeline, so the test covers the media server and the signed URLs too.
CLIP_TEXT = "Kiểm tra định kỳ hệ thống truyền thanh."
WOULD_PLAY = operations.OperationState.DONE
SELF_TEST_ACTOR = Actor("self-test", Role.SYSTEM)


def today_at(now: datetime, at: time, timezone: str) -> datetime:
    """Today's self-test time in the province's zone, as an instant."""
    local = now.astimezone(zone(timezone))
    return local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)


async def due(session: AsyncSession, *, now: datetime, settings: Settings) -> bool:
    """Past today's time and not yet run since then."""
    if settings.self_test_at is None:
        return False
    start = today_at(now, settings.self_test_at, settings.default_timezone)
    if now < start:
        return False
    latest = await _latest(session)
    return latest is None or latest.created_at < start


async def _latest(session: AsyncSession) -> Operation | None:
    return await session.scalar(
        select(Operation)
        .where(Operation.kind == CommandKind.SELF_TEST.value)
        .order_by(Operation.created_at.desc())
        .limit(1)
    )


async def roots(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(Area.code).where(Area.parent_id.is_(None)))).all())


def request(areas: list[str], settings: Settings) -> OperationCreate:
    return OperationCreate.model_validate(
        {"kind": "self_test", "areas": areas, "expires_in_s": settings.self_test_window_s}
    )


async def report(*, session: AsyncSession, area_code: str) -> SelfTestReport:
    """The latest self-test under the area: each cluster that would not have played an
    emergency (failed, or never answered: offline, unreachable), by commune."""
    area = await area_service.get(session=session, code=area_code)
    latest = await _latest(session)
    if latest is None:
        return SelfTestReport(area_code=area.code, operation_id=None)
    rows = await session.execute(
        select(
            Cluster.code,
            Cluster.name,
            Area.code,
            Area.name,
            OperationResult.state,
            OperationResult.reason,
            Cluster.online,
            Cluster.offline_since,
        )
        .join(Cluster, OperationResult.cluster_id == Cluster.id)
        .join(Area, Cluster.area_id == Area.id)
        .where(
            OperationResult.operation_id == latest.id,
            Area.path.startswith(area.path, autoescape=True),
        )
        .order_by(Area.code, Cluster.code)
    )
    communes: dict[tuple[str, str], list[SelfTestFailure]] = defaultdict(list)
    total = passed = 0
    for code, name, commune, commune_name, state, reason, online, off_since in rows.all():
        total += 1
        if state == WOULD_PLAY:
            passed += 1
            continue
        if reason is None:
            reason = (
                f"no answer (offline since {off_since.isoformat(timespec='minutes')})"
                if not online and off_since is not None
                else "no answer"
            )
        communes[(commune, commune_name)].append(
            SelfTestFailure(cluster=code, name=name, state=state, reason=reason)
        )
    return SelfTestReport(
        area_code=area.code,
        operation_id=latest.id,
        started_at=latest.created_at,
        answers_until=latest.expires_at,
        total=total,
        passed=passed,
        communes=[
            SelfTestCommune(area_code=c, name=n, clusters=failures)
            for (c, n), failures in sorted(communes.items())
        ],
    )


async def start(runtime: Sending) -> str:
    """Start a self-test of the whole province now; the operation's id."""
    settings = runtime.settings
    clip = await speech.speak(runtime.ingest_context(), text=CLIP_TEXT, language="vi")
    async with runtime.writing() as session:
        created = await operations.create(
            session=session,
            settings=settings,
            data=request(await roots(session), settings),
            actor=SELF_TEST_ACTOR,
            now=runtime.clock.now(),
            media_sha256=clip.sha256,
        )
    await runtime.require_dispatcher().publish_commands(created.operation.id, created.publications)
    return created.operation.id
