"""Collect messages for a few milliseconds, then handle them in one transaction."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_BASE_S = 0.2  # a failed batch (database restarting) is retried, never dropped
RETRY_CAP_S = 5.0


class BatchConsumer(Generic[T]):
    def __init__(
        self,
        name: str,
        handle: Callable[[list[T]], Awaitable[None]],
        *,
        max_batch: int,
        window_s: float,
    ) -> None:
        self.name = name
        self._handle = handle
        self._max_batch = max_batch
        self._window_s = window_s
        self._queue: asyncio.Queue[T] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0
        self.failures = 0
        self.handle_s = 0.0  # time spent writing batches, to tell a slow database from a flood
        self.max_handle_s = 0.0
        self.max_batch = 0

    def submit(self, item: T) -> None:
        self._idle.clear()
        self._queue.put_nowait(item)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    @property
    def busy(self) -> bool:
        """Something accepted is not yet written."""
        return not self._idle.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"batch-{self.name}")

    async def stop(self) -> None:
        """Finish what was accepted, then stop."""
        await self.drained()
        await cancel_and_wait(self._task)

    def summary(self) -> dict[str, float | int]:
        return {
            "backlog": self.backlog,
            "batches": self.batches,
            "items": self.items,
            "failures": self.failures,
            "handle_s": round(self.handle_s, 3),
            "max_handle_s": round(self.max_handle_s, 3),
            "max_batch": self.max_batch,
        }

    async def drained(self) -> None:
        await self._idle.wait()

    async def _collect(self) -> list[T]:
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._window_s
        while len(batch) < self._max_batch:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            else:
                batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            started = time.perf_counter()
            delay = RETRY_BASE_S
            while True:
                try:
                    await self._handle(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.failures += 1
                    log.exception(
                        "%s: batch of %d failed; retrying in %.1fs", self.name, len(batch), delay
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_CAP_S)
            elapsed = time.perf_counter() - started
            self.batches += 1
            self.items += len(batch)
            self.handle_s += elapsed
            self.max_handle_s = max(self.max_handle_s, elapsed)
            self.max_batch = max(self.max_batch, len(batch))
            if self._queue.empty():
                self._idle.set()
