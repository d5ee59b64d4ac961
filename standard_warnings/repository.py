"""SQL for the standard warnings."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from standard_warnings.models import StandardWarning


async def all_warnings(session: AsyncSession) -> list[StandardWarning]:
    """The whole library, by id (a province keeps a handful)."""
    rows = await session.scalars(select(StandardWarning).order_by(StandardWarning.id))
    return list(rows.all())


async def get(session: AsyncSession, warning_id: str) -> StandardWarning | None:
    return await session.get(StandardWarning, warning_id)


async def holds(session: AsyncSession, media_sha256: str) -> bool:
    """Whether this clip is a standard warning's (every cluster holds it)."""
    found = await session.scalar(
        select(StandardWarning.id).where(StandardWarning.media_sha256 == media_sha256).limit(1)
    )
    return found is not None


async def count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(StandardWarning)) or 0
