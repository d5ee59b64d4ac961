"""Area tree logic: create, move, delete, import. Services flush, never commit."""

from __future__ import annotations

import csv
import io

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from areas import repository
from areas.models import Area
from areas.schemas import AreaCreate, AreaRead, AreaUpdate
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound
from core.schemas import ImportReport, ImportRowError, Page
from devices import moves


class AreaNotFound(NotFound):
    def __init__(self, code: str) -> None:
        super().__init__(f"area {code!r} not found", detail={"area": code})


def _path_for(parent: Area | None, code: str) -> str:
    return f"{parent.path if parent else '/'}{code}/"


def to_read(area: Area, parent_code: str | None) -> AreaRead:
    return AreaRead(
        code=area.code,
        name=area.name,
        level=area.level,
        parent_code=parent_code,
        path=area.path,
        depth=area.depth,
        created_at=area.created_at,
        dissolved_on=area.dissolved_on,
        successors=area.successors,
        since=area.since,
    )


async def get(*, session: AsyncSession, code: str) -> Area:
    area = await repository.get_by_code(session, code)
    if area is None:
        raise AreaNotFound(code)
    return area


async def read(*, session: AsyncSession, code: str) -> AreaRead:
    area = await get(session=session, code=code)
    return to_read(area, await repository.parent_code_of(session, area))


async def create(*, session: AsyncSession, clock: Clock, data: AreaCreate) -> AreaRead:
    if await repository.get_by_code(session, data.code) is not None:
        raise Conflict(f"area {data.code!r} already exists", detail={"area": data.code})
    parent = await get(session=session, code=data.parent_code) if data.parent_code else None
    area = Area(
        code=data.code,
        name=data.name,
        level=data.level,
        parent_id=parent.id if parent else None,
        path=_path_for(parent, data.code),
        depth=(parent.depth + 1) if parent else 0,
        created_at=clock.now(),
    )
    session.add(area)
    await session.flush()
    return to_read(area, data.parent_code)


async def update(*, session: AsyncSession, code: str, data: AreaUpdate) -> AreaRead:
    area = await get(session=session, code=code)
    if data.name is not None:
        area.name = data.name
    if data.level is not None:
        area.level = data.level
    if "parent_code" in data.model_fields_set:
        await _move(session, area, data.parent_code)
    await session.flush()
    return to_read(area, await repository.parent_code_of(session, area))


async def _move(session: AsyncSession, area: Area, parent_code: str | None) -> None:
    parent = await get(session=session, code=parent_code) if parent_code else None
    if parent is not None and parent.path.startswith(area.path):
        raise InvalidInput(
            f"area {area.code!r} cannot move under its own descendant {parent.code!r}",
            detail={"field": "parent_code"},
        )
    old_path, new_path = area.path, _path_for(parent, area.code)
    area.parent_id = parent.id if parent else None
    await session.flush()
    await moves.move_subtree(session, old_prefix=old_path, new_prefix=new_path)
    await session.refresh(area)


async def delete(*, session: AsyncSession, code: str) -> None:
    from devices import repository as device_repository

    area = await get(session=session, code=code)
    if await repository.has_children(session, area):
        raise Conflict(f"area {code!r} still has child areas", detail={"area": code})
    if await device_repository.count_in_areas(session, [area.id]) > 0:
        raise Conflict(f"area {code!r} still has clusters", detail={"area": code})
    await session.delete(area)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            f"area {code!r} has broadcast history and cannot be deleted",
            detail={"area": code},
        ) from None


async def list_page(
    *,
    session: AsyncSession,
    under: str | None,
    parent: str | None,
    level: str | None,
    limit: int,
    offset: int,
    dissolved: bool = False,
) -> Page[AreaRead]:
    under_area = await get(session=session, code=under) if under else None
    parent_area = await get(session=session, code=parent) if parent else None
    rows, total = await repository.list_page(
        session,
        under=under_area,
        parent=parent_area,
        level=level,
        limit=limit,
        offset=offset,
        dissolved=dissolved,
    )
    items = [to_read(area, parent_code) for area, parent_code in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


async def paths_today(session: AsyncSession) -> dict[int, list[str]]:
    """Every area's id → the paths it is found under today: its own, or for a unit a
    reorganisation dissolved, its successors' (followed through later dissolutions; a
    split commune has several)."""
    rows = (await session.execute(select(Area.id, Area.code, Area.path, Area.successors))).all()
    by_code = {code: (path, successors) for _, code, path, successors in rows}

    def follow(code: str, seen: frozenset[str]) -> list[str]:
        path, successors = by_code.get(code, (None, None))
        if not successors:
            return [path] if path is not None else []
        return [p for s in successors if s not in seen for p in follow(s, seen | {s})]

    return {area_id: follow(code, frozenset({code})) for area_id, code, _, _ in rows}


AREA_CSV_COLUMNS = ("code", "name", "level", "parent_code")


async def import_csv(*, session: AsyncSession, clock: Clock, text: str) -> ImportReport:
    """Create or update areas from CSV; parents may appear anywhere earlier in the file.

    Every row is judged on its own: a bad row is reported and skipped, the rest land.
    """
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text, newline=""))  # quoted line breaks kept
    missing = [c for c in ("code", "name", "level") if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(
            f"CSV header lacks column(s) {', '.join(missing)}", detail={"field": missing[0]}
        )
    for line_no, row in enumerate(reader, start=2):
        try:
            data = AreaCreate.model_validate(
                {k: (row.get(k) or None) for k in AREA_CSV_COLUMNS if row.get(k)}
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            report.errors.append(ImportRowError(row=line_no, field=field, error=err["msg"]))
            continue
        existing = await repository.get_by_code(session, data.code)
        try:
            async with session.begin_nested():
                if existing is None:
                    await create(session=session, clock=clock, data=data)
                    report.created += 1
                else:
                    await update(
                        session=session,
                        code=data.code,
                        data=AreaUpdate(
                            name=data.name, level=data.level, parent_code=data.parent_code
                        ),
                    )
                    report.updated += 1
        except (NotFound, InvalidInput, Conflict) as exc:
            bad_field = "parent_code" if isinstance(exc, NotFound) else None
            report.errors.append(ImportRowError(row=line_no, field=bad_field, error=exc.message))
    return report


async def count(*, session: AsyncSession) -> int:
    return (await session.execute(select(func.count(Area.id)))).scalar_one()
