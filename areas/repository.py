"""SQL for the area tree."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from areas.models import Area
from core.paging import paged


async def get_by_code(session: AsyncSession, code: str) -> Area | None:
    return (await session.execute(select(Area).where(Area.code == code))).scalar_one_or_none()


async def get_many_by_code(session: AsyncSession, codes: Sequence[str]) -> dict[str, Area]:
    if not codes:
        return {}
    rows = (await session.execute(select(Area).where(Area.code.in_(list(codes))))).scalars()
    return {area.code: area for area in rows}


async def list_page(
    session: AsyncSession,
    *,
    under: Area | None,
    parent: Area | None,
    level: str | None,
    limit: int,
    offset: int,
    dissolved: bool = False,
) -> tuple[list[tuple[Area, str | None]], int]:
    parent_area = aliased(Area)
    query = select(Area, parent_area.code).outerjoin(parent_area, Area.parent_id == parent_area.id)
    if under is not None:
        query = query.where(Area.path.startswith(under.path, autoescape=True))
    if parent is not None:
        query = query.where(Area.parent_id == parent.id)
    if level is not None:
        query = query.where(Area.level == level)
    if not dissolved:
        query = query.where(Area.dissolved_on.is_(None))
    rows, total = await paged(session, query.order_by(Area.path), limit=limit, offset=offset)
    return [(row[0], row[1]) for row in rows], total


async def has_children(session: AsyncSession, area: Area) -> bool:
    query = select(Area.id).where(Area.parent_id == area.id).limit(1)
    return (await session.execute(query)).first() is not None


async def repath_subtree(session: AsyncSession, *, old_prefix: str, new_prefix: str) -> None:
    """Rewrite the path and depth of every descendant after a move."""
    depth_change = new_prefix.count("/") - old_prefix.count("/")
    await session.execute(
        update(Area)
        .where(Area.path.startswith(old_prefix, autoescape=True))
        .values(
            path=literal(new_prefix, String) + func.substr(Area.path, len(old_prefix) + 1),
            depth=Area.depth + depth_change,
        )
        .execution_options(synchronize_session=False)
    )


async def parent_code_of(session: AsyncSession, area: Area) -> str | None:
    if area.parent_id is None:
        return None
    query = select(Area.code).where(Area.id == area.parent_id)
    return (await session.execute(query)).scalar_one()


async def get_by_id(session: AsyncSession, area_id: int) -> Area:
    return (await session.execute(select(Area).where(Area.id == area_id))).scalar_one()


async def heirs_paths(session: AsyncSession, successors: Sequence[str]) -> list[str]:
    """The paths today's units hold for a dissolved unit's `successors`, followed
    through later dissolutions: who inherited its history (one query a generation)."""
    found: list[str] = []
    seen: set[str] = set()
    wanted = [code for code in successors]
    while wanted:
        seen.update(wanted)
        rows = await session.execute(
            select(Area.path, Area.successors).where(Area.code.in_(wanted))
        )
        wanted = []
        for path, later in rows.all():
            if later:
                wanted += [code for code in later if code not in seen]
            else:
                found.append(path)
    return found
