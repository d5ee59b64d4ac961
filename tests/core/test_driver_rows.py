"""`executemany_rows` (core/database.py): rows handed to the driver as they are, on both
databases, read back exactly as SQLAlchemy's own statements would have written them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import (
    Placeholder,
    UTCDateTime,
    create_engine,
    create_session_maker,
    executemany_rows,
    fetch_rows,
    session_scope,
)
from core.writes import WriteOutsideScope, Writing, writing_for

_metadata = MetaData()
ROWS = Table(
    "driver_rows_test",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
    Column("at", UTCDateTime()),
    Column("later", UTCDateTime()),
)
HANOI = timezone(timedelta(hours=7))
T0 = datetime(2026, 12, 5, 12, 0, 0, 0, tzinfo=UTC)  # microseconds 0: still written in full


@pytest.fixture
async def engine(clean_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(clean_db)
    async with engine.begin() as conn:
        await conn.run_sync(_metadata.create_all)
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(_metadata.drop_all)
        await engine.dispose()


def _writing(engine: AsyncEngine) -> Writing:
    return writing_for(create_session_maker(engine))


async def _read(
    engine: AsyncEngine,
) -> list[tuple[int, str | None, datetime | None, datetime | None]]:
    async with session_scope(create_session_maker(engine)) as session:
        rows = (await session.execute(select(ROWS).order_by(ROWS.c.id))).all()
    return [(r.id, r.name, r.at, r.later) for r in rows]


async def test_inserted_rows_read_back_as_written_in_utc(engine: AsyncEngine) -> None:
    in_hanoi = datetime(2026, 12, 5, 19, 30, 15, 123456, tzinfo=HANOI)
    async with _writing(engine)() as session:
        await executemany_rows(
            session,
            ROWS,
            ("id", "name", "at", "later"),
            [(1, "a", T0, None), (2, None, in_hanoi, T0), (3, "c", None, None)],
        )
    assert await _read(engine) == [
        (1, "a", T0, None),
        (2, None, datetime(2026, 12, 5, 12, 30, 15, 123456, tzinfo=UTC), T0),
        (3, "c", None, None),
    ]


async def test_driver_rows_compare_with_rows_sqlalchemy_wrote(engine: AsyncEngine) -> None:
    """On SQLite times are text and compared as text: both writers must write the same
    text, or `next_attempt_at <= now` would go wrong."""
    async with _writing(engine)() as session:
        await session.execute(insert(ROWS).values(id=1, name="orm", at=T0))
        await executemany_rows(session, ROWS, ("id", "name", "at"), [(2, "driver", T0)])
        await executemany_rows(session, ROWS, ("id", "at"), [(3, T0 + timedelta(microseconds=1))])
    async with session_scope(create_session_maker(engine)) as session:
        same = (await session.execute(select(ROWS.c.id).where(ROWS.c.at == T0))).scalars()
        assert sorted(same) == [1, 2]
        up_to = (await session.execute(select(ROWS.c.id).where(ROWS.c.at <= T0))).scalars()
        assert sorted(up_to) == [1, 2]
        after = (await session.execute(select(ROWS.c.id).where(ROWS.c.at > T0))).scalars()
        assert list(after) == [3]


async def test_updates_by_id_only_the_columns_named(engine: AsyncEngine) -> None:
    async with _writing(engine)() as session:
        await executemany_rows(
            session, ROWS, ("id", "name", "at"), [(1, "a", T0), (2, "b", T0), (3, "c", T0)]
        )
    moved = T0 + timedelta(seconds=5)
    async with _writing(engine)() as session:
        await executemany_rows(
            session, ROWS, ("at", "later"), [(moved, moved, 1), (None, T0, 3)], where_id=True
        )
    assert await _read(engine) == [
        (1, "a", moved, moved),
        (2, "b", T0, None),
        (3, "c", None, T0),
    ]


async def test_a_naive_time_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="naive"):
        async with _writing(engine)() as session:
            await executemany_rows(session, ROWS, ("id", "at"), [(1, datetime(2026, 12, 5, 12, 0))])
    assert await _read(engine) == []


async def test_outside_a_write_scope_it_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(WriteOutsideScope, match="write scope"):
        async with session_scope(create_session_maker(engine)) as session:
            await executemany_rows(session, ROWS, ("id", "name"), [(1, "a")])


async def test_fetched_rows_read_times_as_sqlalchemy_does(engine: AsyncEngine) -> None:
    in_hanoi = datetime(2026, 12, 5, 19, 30, 15, 123456, tzinfo=HANOI)
    async with _writing(engine)() as session:
        await session.execute(insert(ROWS).values(id=1, name="orm", at=in_hanoi))
        await executemany_rows(session, ROWS, ("id", "name", "later"), [(2, "driver", T0)])

    def sql(mark: Placeholder, _dialect: str) -> str:
        return (
            "SELECT id, name, at, later FROM driver_rows_test "
            f"WHERE name IN ({mark(1)}, {mark(2)}) ORDER BY id"
        )

    async with session_scope(create_session_maker(engine)) as session:
        fetched = await fetch_rows(session, sql, ["orm", "driver"], times=(2, 3))
    assert fetched == [tuple(row) for row in await _read(engine)]
    assert fetched == [
        (1, "orm", datetime(2026, 12, 5, 12, 30, 15, 123456, tzinfo=UTC), None),
        (2, "driver", None, T0),
    ]
