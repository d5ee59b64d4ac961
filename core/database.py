"""Engine, session maker and the declarative base shared by every domain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, Table, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from core.writes import RULE, WRITING, GuardedSession, WriteOutsideScope

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntPK = BigInteger().with_variant(Integer, "sqlite")

# Rows of the busiest tables are written in batches; keep each statement under the
# bind-parameter limits of both backends (SQLite: 32766, asyncpg: 32767).
MAX_BIND_PARAMS = 30_000

SQLITE_BUSY_TIMEOUT_MS = 10_000  # a long CSV import must not fail a concurrent ack batch


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @staticmethod
    def driver_value(dialect: Dialect) -> Callable[[datetime | None], object]:
        """What this column hands the driver itself, for statements that skip SQLAlchemy's
        parameter processing (`executemany_rows`): on SQLite the text SQLAlchemy's own
        DATETIME writes (naive UTC, microseconds always), elsewhere the aware UTC time."""
        sqlite = dialect.name == "sqlite"

        def convert(value: datetime | None) -> object:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime refused: store UTC")
            value = value.astimezone(UTC)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else value

        return convert

    @staticmethod
    def from_driver(value: object) -> datetime | None:
        """A value as the driver returned it (text on SQLite), as `process_result_value`
        would have made it: for rows read with `fetch_rows`."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(url: str) -> AsyncEngine:
    """Build the engine; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def create_session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that refuse to write outside a write scope (core/writes.py)."""
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=GuardedSession
    )


@asynccontextmanager
async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work that reads: commit on success, roll back on error. Writes refuse
    here; they take `core.writes.write_scope` (the runtime's `writing()`)."""
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


_PLACEHOLDERS: dict[str, Callable[[int], str]] = {
    "qmark": lambda _n: "?",
    "numeric_dollar": lambda n: f"${n}",
    "format": lambda _n: "%s",
}


async def executemany_rows(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    where_id: bool = False,
) -> None:
    """INSERT one row per tuple of `columns` values or, with `where_id`, UPDATE those
    columns of the row whose `id` is each tuple's last value: one executemany handed to
    the driver as it is, skipping SQLAlchemy's per-row parameter processing (11 us a row
    for an UPDATE of four columns on SQLite, 3 us this way; 7 and 2 us for an INSERT).
    Values go through each column's own conversion for the driver (UTCDateTime's); other
    columns take what the driver takes (text, numbers, None). In a write scope only, as
    every write (core/writes.py): the session's guard does not see driver statements."""
    if not rows:
        return
    if not session.info.get(WRITING):
        raise WriteOutsideScope(
            f"{'UPDATE' if where_id else 'INSERT'} outside a write scope: {RULE}"
        )
    connection = await session.connection()
    dialect = connection.dialect
    placeholder = _PLACEHOLDERS[dialect.paramstyle]
    converters = [
        UTCDateTime.driver_value(dialect) if isinstance(table.c[c].type, UTCDateTime) else None
        for c in columns
    ]
    if any(converters):
        width = len(columns)  # an UPDATE's row ends with the id, taken as it is
        rows = [
            (
                *(v if f is None else f(v) for f, v in zip(converters, row[:width], strict=True)),
                *row[width:],
            )
            for row in rows
        ]
    quote = dialect.identifier_preparer.quote
    names = [quote(c) for c in columns]
    if where_id:
        assignments = ", ".join(f"{name} = {placeholder(n)}" for n, name in enumerate(names, 1))
        sql = (
            f"UPDATE {quote(table.name)} SET {assignments} WHERE id = {placeholder(len(names) + 1)}"
        )
    else:
        values = ", ".join(placeholder(n) for n in range(1, len(names) + 1))
        sql = f"INSERT INTO {quote(table.name)} ({', '.join(names)}) VALUES ({values})"
    await connection.exec_driver_sql(sql, list(rows))


type Placeholder = Callable[[int], str]  # the driver's mark for the n-th parameter (from 1)


async def fetch_rows(
    session: AsyncSession,
    sql: Callable[[Placeholder, str], str],
    params: Sequence[Any],
    *,
    times: Sequence[int] = (),
) -> list[tuple[Any, ...]]:
    """Rows of a SELECT handed to the driver as it is: `sql(placeholder, dialect name)`
    writes it for this database; the values at positions `times` are UTCDateTime columns,
    read back as SQLAlchemy would (aware, UTC); the rest as the driver gives them. For a
    hot read whose SQLAlchemy result handling cost more than the query itself."""
    connection = await session.connection()
    dialect = connection.dialect
    result = await connection.exec_driver_sql(
        sql(_PLACEHOLDERS[dialect.paramstyle], dialect.name), tuple(params)
    )
    rows = [tuple(row) for row in result.all()]
    if times:
        read = UTCDateTime.from_driver
        for k, row in enumerate(rows):
            values = list(row)
            for i in times:
                values[i] = read(values[i])
            rows[k] = tuple(values)
    return rows


def chunked(rows: list[Any], columns_per_row: int) -> list[list[Any]]:
    """Split rows so that one statement stays under the bind-parameter limit."""
    size = max(1, MAX_BIND_PARAMS // max(1, columns_per_row))
    return [rows[i : i + size] for i in range(0, len(rows), size)]
