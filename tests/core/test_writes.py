"""The one write rule (core/writes.py): writes refuse outside a write scope, and a request
that reads, then writes, is not failed by a background writer in between."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update

from areas.models import Area
from core.database import session_scope
from core.writes import NestedWriteScope, WriteOutsideScope
from tests.support import Stack

PROVINCE = {"code": "70", "name": "Tỉnh Bình Phước", "level": "province"}
DISTRICTS = ("689", "695")
IMPORTS = 10


async def _areas(stack: Stack) -> None:
    for body in (
        PROVINCE,
        *({"code": c, "name": c, "level": "district", "parent_code": "70"} for c in DISTRICTS),
    ):
        response = await stack.client.post("/api/v1/areas", json=body)
        assert response.status_code == 201, response.text


async def test_a_write_outside_the_scope_is_refused(stack: Stack) -> None:
    await _areas(stack)
    runtime = stack.runtime
    with pytest.raises(WriteOutsideScope, match="write scope"):
        async with session_scope(runtime.sessions) as session:
            area = await session.scalar(select(Area).where(Area.code == "689"))
            assert area is not None
            area.name = "changed in a read session"
    with pytest.raises(WriteOutsideScope, match="Update outside a write scope"):
        async with session_scope(runtime.sessions) as session:
            await session.execute(update(Area).where(Area.code == "689").values(name="x"))
    async with session_scope(runtime.sessions) as session:
        assert await session.scalar(select(Area.name).where(Area.code == "689")) == "689"

    async with runtime.writing() as session:
        await session.execute(update(Area).where(Area.code == "689").values(name="renamed"))
    async with session_scope(runtime.sessions) as session:
        assert await session.scalar(select(Area.name).where(Area.code == "689")) == "renamed"


async def test_a_scope_within_a_scope_fails_at_once_instead_of_waiting_for_itself(
    stack: Stack,
) -> None:
    runtime = stack.runtime
    with pytest.raises(NestedWriteScope):
        async with runtime.writing(), runtime.writing():
            pass
    async with runtime.writing():  # the lock was released
        pass


async def test_read_then_write_in_a_request_while_a_background_job_writes(stack: Stack) -> None:
    """An import reads, then writes, in one transaction (a savepoint per row begins it on
    SQLite). Read in a plain request session, with a background writer committing between,
    SQLite refused the write at once ("database is locked"): a 500. In the write scope the
    two take turns."""
    await _areas(stack)
    stop = asyncio.Event()
    written = 0

    async def background_writer() -> None:
        nonlocal written
        while not stop.is_set():
            async with stack.runtime.writing() as session:
                await session.execute(
                    update(Area).where(Area.code == "695").values(name=f"job {written}")
                )
            written += 1
            await asyncio.sleep(0)

    def csv(i: int) -> bytes:
        rows = [
            f"{code}-{n},{code} {n} ({i}),commune,{code}" for code in DISTRICTS for n in range(5)
        ]
        return "\n".join(["code,name,level,parent_code", *rows]).encode()

    job = asyncio.create_task(background_writer())
    try:
        answers = await asyncio.gather(
            *(
                stack.client.post(
                    "/api/v1/areas/import", files={"file": ("areas.csv", csv(i), "text/csv")}
                )
                for i in range(IMPORTS)
            )
        )
    finally:
        stop.set()
        await job
    assert [a.status_code for a in answers] == [200] * IMPORTS, [a.text for a in answers]
    assert written > 0
