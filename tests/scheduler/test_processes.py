"""Two `broadcast scheduler` processes against one PostgreSQL: one leads and fires each
slot once; killed with SIGKILL, the other takes over and fires the next slot."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from broadcast.models import Broadcast
from core.database import session_scope
from core.settings import Settings
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.processes import settings_env
from tests.support import Stack, eventually

VN = ZoneInfo("Asia/Ho_Chi_Minh")
LEAD_S = 4  # the slot is this far ahead when saved: both processes are up by then


class _Scheduler:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "scheduler"],
                env=settings_env(settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def says(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)


@pytest.fixture
def scheduler_processes(tmp_path: Path) -> Iterator[Callable[[Settings], list[_Scheduler]]]:
    started: list[_Scheduler] = []

    def start(settings: Settings) -> list[_Scheduler]:
        started.extend(_Scheduler(settings, tmp_path / f"scheduler-{i}.log") for i in range(2))
        return started

    yield start
    for scheduler in started:
        scheduler.stop()


async def _one_off(stack: Stack, bulletin_id: str, title: str) -> tuple[str, datetime]:
    slot = (datetime.now(UTC) + timedelta(seconds=LEAD_S)).replace(microsecond=0)
    local = slot.astimezone(VN).replace(tzinfo=None).isoformat()
    response = await stack.client.post(
        "/api/v1/schedules",
        json={
            "title": title,
            "bulletin_id": bulletin_id,
            "starts_local": local,
            "areas": ["25195"],
        },
    )
    assert response.status_code == 201, response.text
    schedule_id: str = response.json()["id"]
    return schedule_id, slot


async def _firings(stack: Stack, schedule_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (
        await stack.client.get(f"/api/v1/schedules/{schedule_id}/firings")
    ).json()
    return data


async def _broadcasts(stack: Stack) -> int:
    async with session_scope(stack.runtime.sessions) as session:
        return await session.scalar(select(func.count()).select_from(Broadcast)) or 0


async def test_two_scheduler_processes_fire_once_and_a_standby_takes_over_a_killed_leader(
    stack_factory: Callable[..., Awaitable[Stack]],
    database_url: str,
    scheduler_processes: Callable[[Settings], list[_Scheduler]],
    tone_mp3: Path,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("scheduler processes elect a leader on PostgreSQL; SQLite runs one")
    stack = await stack_factory(run_jobs_in_api=False)  # the API fires nothing itself
    await small_province(stack)
    clip = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, title="Bản tin", media_sha256=clip["sha256"])
    schedulers = scheduler_processes(stack.settings)

    async def leaders() -> list[bool]:
        return [s.says("acquired scheduler leadership") for s in schedulers]

    assert await eventually(leaders, lambda led: any(led), what="a leader") in (
        [True, False],
        [False, True],
    )
    first, slot = await _one_off(stack, bulletin["id"], "Bản tin sáng")
    [fired] = await eventually(
        lambda: _firings(stack, first), lambda f: len(f) == 1, what="the slot fired"
    )
    assert fired["outcome"] == "on_time" and fired["broadcast_id"]

    leader = next(s for s in schedulers if s.says("acquired scheduler leadership"))
    standby = next(s for s in schedulers if s is not leader)
    leader.proc.send_signal(signal.SIGKILL)  # mid-duty, no goodbye: PostgreSQL frees its lock
    leader.proc.wait(10)
    await eventually(
        lambda: _said(standby, "acquired scheduler leadership"),
        lambda said: said,
        what="the standby taking over",
    )
    second, _ = await _one_off(stack, bulletin["id"], "Bản tin trưa")
    [fired_again] = await eventually(
        lambda: _firings(stack, second), lambda f: len(f) == 1, what="the next slot fired"
    )
    assert fired_again["broadcast_id"]
    assert len(await _firings(stack, first)) == 1, "the first slot was not fired again"
    assert await _broadcasts(stack) == 2
    ahead = (slot - datetime.fromisoformat(fired["fired_at"])).total_seconds()
    assert 0 < ahead <= stack.settings.schedule_prefire_s, "sent ahead, for the clusters to hold"


async def _said(scheduler: _Scheduler, text: str) -> bool:
    return scheduler.says(text)
