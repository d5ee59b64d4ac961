"""The library of standard warnings: create or replace, delete, list. Services flush,
never commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.actors import Actor
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound
from media.models import MediaFile
from standard_warnings import repository
from standard_warnings.models import StandardWarning
from standard_warnings.schemas import WarningPut

AUDIO = "audio"  # MediaFile.kind of a clip a speaker can play
# A short library: every cluster fetches and keeps every clip, and every schedule document
# lists them all (50 with two renditions each is some 70 KB of a document's 512 KB).
MAX_WARNINGS = 50


class WarningNotFound(NotFound):
    def __init__(self, warning_id: str) -> None:
        super().__init__(
            f"standard warning {warning_id!r} not found", detail={"warning": warning_id}
        )


async def list_all(*, session: AsyncSession) -> list[StandardWarning]:
    return await repository.all_warnings(session)


async def get(*, session: AsyncSession, warning_id: str) -> StandardWarning:
    warning = await repository.get(session, warning_id)
    if warning is None:
        raise WarningNotFound(warning_id)
    return warning


async def put(
    *, session: AsyncSession, clock: Clock, actor: Actor, warning_id: str, data: WarningPut
) -> tuple[StandardWarning, bool]:
    """The warning under this id, created or replaced; True if it is new."""
    media = await session.get(MediaFile, data.media_sha256)
    # Every cluster fetches and keeps it to play in an emergency: it must be a clip we
    # serve, and one a speaker plays.
    if media is None or media.kind != AUDIO:
        raise InvalidInput(
            f"media_sha256 {data.media_sha256!r} is not audio we hold: upload it first "
            "(POST /api/v1/media)",
            detail={"field": "media_sha256"},
        )
    now = clock.now()
    warning = await repository.get(session, warning_id)
    created = warning is None
    if warning is None:
        if await repository.count(session) >= MAX_WARNINGS:
            raise Conflict(
                f"the library holds {MAX_WARNINGS} warnings, the most every cluster keeps: "
                "replace or delete one",
                detail={"field": "id", "most": MAX_WARNINGS},
            )
        warning = StandardWarning(id=warning_id, created_at=now)
        session.add(warning)
    warning.title = data.title
    warning.media_sha256 = data.media_sha256
    warning.updated_at = now
    warning.updated_by = actor.name
    await session.flush()
    return warning, created


async def delete(*, session: AsyncSession, warning_id: str) -> None:
    """Out of the library: the next documents no longer list it, and clusters may drop it."""
    await session.delete(await get(session=session, warning_id=warning_id))
    await session.flush()
