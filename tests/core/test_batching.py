"""The batch consumer against a real SQLite table: one item that cannot be written is set
aside alone and the rest are written; a store that is down keeps the whole batch until
it is back; shutdown ends within its grace period (issue 20)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core.batching import BatchConsumer
from core.database import create_engine

BAD = -1  # the table refuses it (a CHECK constraint), as a database refuses a bad value


async def _table(path: Path) -> object:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE seen (n INTEGER CHECK (n <> {BAD}))"))
    return engine


async def test_one_bad_item_is_set_aside_and_the_rest_written(tmp_path: Path) -> None:
    engine = await _table(tmp_path / "t.db")
    aside: list[tuple[int, str]] = []
    handled: list[int] = []

    async def write(batch: list[int]) -> None:
        handled.append(len(batch))
        async with engine.begin() as conn:  # type: ignore[attr-defined]
            await conn.execute(text("INSERT INTO seen (n) VALUES (:n)"), [{"n": n} for n in batch])

    async def healthy() -> bool:
        return True

    consumer = BatchConsumer(
        "t",
        write,
        max_batch=1000,
        window_s=0.05,
        healthy=healthy,
        set_aside=lambda n, exc: aside.append((n, type(exc).__name__)),
    )
    consumer.start()
    items = [*range(500), BAD, *range(500, 1000)]
    for n in items:
        consumer.submit(n)
    await consumer.drained()
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        written = sorted((await conn.execute(text("SELECT n FROM seen"))).scalars().all())
    assert written == list(range(1000))  # everything but the bad one, once each
    assert aside == [(BAD, IntegrityError.__name__)]
    assert consumer.set_aside == 1 and consumer.backlog == 0
    assert len(handled) <= 2 + 2 * 11  # halving: about twice log2(1001) more writes
    await consumer.stop()
    await engine.dispose()  # type: ignore[attr-defined]


async def test_a_store_that_is_down_keeps_the_batch_until_it_is_back(tmp_path: Path) -> None:
    engine = await _table(tmp_path / "t.db")
    up, tried_thrice = asyncio.Event(), asyncio.Event()
    attempts = 0

    async def write(batch: list[int]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts >= 3:
            tried_thrice.set()
        if not up.is_set():
            raise ConnectionRefusedError("the database is restarting")
        async with engine.begin() as conn:  # type: ignore[attr-defined]
            await conn.execute(text("INSERT INTO seen (n) VALUES (:n)"), [{"n": n} for n in batch])

    async def healthy() -> bool:
        return up.is_set()

    aside: list[int] = []
    consumer = BatchConsumer(
        "t",
        write,
        max_batch=100,
        window_s=0.01,
        healthy=healthy,
        set_aside=lambda n, _: aside.append(n),
    )
    consumer.start()
    for n in range(50):
        consumer.submit(n)
    await tried_thrice.wait()  # it keeps trying, and sets nothing aside meanwhile
    assert aside == [] and consumer.busy
    up.set()
    await consumer.drained()
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        count = (await conn.execute(text("SELECT count(*) FROM seen"))).scalar()
    assert count == 50 and aside == []
    await consumer.stop()
    await engine.dispose()  # type: ignore[attr-defined]


async def test_shutdown_ends_within_its_grace_with_the_store_down() -> None:
    async def write(batch: list[int]) -> None:
        raise ConnectionRefusedError("down for good")

    async def healthy() -> bool:
        return False

    consumer = BatchConsumer("t", write, max_batch=10, window_s=0.01, healthy=healthy)
    consumer.start()
    consumer.submit(1)
    started = time.monotonic()
    await consumer.stop(grace_s=0.5)
    assert time.monotonic() - started < 2.0
