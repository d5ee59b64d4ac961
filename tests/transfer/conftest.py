"""A second database on the test's backend: the other instance's."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from audit import append_only
from core.database import Base, create_engine
from core.migrate import upgrade
from core.models import import_all_models

PG_ADMIN_DSN = os.environ.get(
    "BROADCAST_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
async def other_database_url(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """Made once per backend, like the suite's own."""
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('other') / 'other.db'}"
        admin = None
    else:
        name = f"broadcast_test_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{database_url.rsplit('/', 1)[0]}/{name}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    try:
        yield url
    finally:
        if admin is not None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            await admin.close()


@pytest.fixture
async def other_db(other_database_url: str) -> str:
    """Emptied before the test, as clean_db empties the suite's."""
    import_all_models()
    engine = create_engine(other_database_url)
    dialect = engine.dialect.name
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE areas SET parent_id = NULL"))
        for statement in append_only.drop_statements(dialect):
            await conn.execute(text(statement))
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(text(f'DELETE FROM "{table.name}"'))
        for statement in append_only.create_statements(dialect):
            await conn.execute(text(statement))
    await engine.dispose()
    return other_database_url
