"""Run named jobs every interval while holding leadership."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from core.tasks import cancel_and_wait
from scheduler.leader import LeaderLock

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


class JobRunner:
    def __init__(self, jobs: dict[str, Job], *, interval_s: float, leader: LeaderLock) -> None:
        self._jobs = jobs
        self._interval_s = interval_s
        self._leader = leader
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self._tick_done = asyncio.Condition()

    @property
    def leading(self) -> bool:
        return self._leader.held

    def start(self) -> None:
        self._task = asyncio.create_task(self.run_forever(), name="job-runner")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await self._leader.release()

    async def run_once(self) -> None:
        for name, job in self._jobs.items():
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed; it runs again next tick", name)
        async with self._tick_done:
            self.ticks += 1
            self._tick_done.notify_all()

    async def wait_ticks(self, n: int) -> None:
        """Wait until n more ticks have completed (tests synchronise on this, not on sleep)."""
        async with self._tick_done:
            target = self.ticks + n
            await self._tick_done.wait_for(lambda: self.ticks >= target)

    async def run_forever(self) -> None:
        while True:
            try:
                leading = await self._leader.try_acquire()
            except Exception:
                log.exception("leader election failed")
                leading = False
            if leading:
                await self.run_once()
            await asyncio.sleep(self._interval_s)
