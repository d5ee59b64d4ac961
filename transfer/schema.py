"""The schema revision an archive was written at, and whether this code knows it."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.migrate import alembic_config


async def database_revision(connection: AsyncConnection) -> str:
    revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    return str(revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revision(revision: str) -> bool:
    """Whether `revision` is one of this code's migrations (an archive written by a newer
    release names one it does not have)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False
