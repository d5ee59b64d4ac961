"""One page of a list and the total it is taken from, for every paged answer (`Page`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession


async def paged[*Ts](
    session: AsyncSession, query: Select[*Ts], *, limit: int, offset: int
) -> tuple[Sequence[Row[*Ts]], int]:
    """The rows of `query` (ordered as it says) from `offset`, at most `limit`, and how many
    it has in all. The count leaves the order out: it does not change the number, and
    sorting a whole audit log only to count it would cost the database for nothing."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = (await session.execute(query.limit(limit).offset(offset))).all()
    return rows, total or 0
