"""Where standard warnings meet broadcasts: a send that names a warning airs its clip,
which every cluster already holds (docs/protocol.md 11.1)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from broadcast.schemas import BroadcastCreate
from core.errors import Conflict, InvalidInput
from standard_warnings import repository
from standard_warnings.models import StandardWarning
from wire.protocol import CommandClass


async def named(session: AsyncSession, warning_id: str) -> StandardWarning:
    """The warning a request names, or 422 naming `warning`."""
    warning = await repository.get(session, warning_id)
    if warning is None:
        raise InvalidInput(
            f"no standard warning {warning_id!r} (GET /api/v1/warnings lists them)",
            detail={"field": "warning"},
        )
    return warning


async def resolve(*, session: AsyncSession, data: BroadcastCreate) -> BroadcastCreate:
    """The send with its audio, and its title unless one was given, taken from the warning
    it names; unchanged if it names none."""
    if data.warning is None:
        return data
    if data.cls is not CommandClass.EMERGENCY:
        # Priority and normal broadcasts air approved bulletins (bulletins/airing.py); the
        # library is the province's emergencies.
        raise Conflict(
            "a standard warning is aired as an emergency: leave out class, or give an "
            "approved bulletin_id instead",
            detail={"field": "class"},
        )
    warning = await named(session, data.warning)
    return data.model_copy(
        update={"media_sha256": warning.media_sha256, "title": data.title or warning.title}
    )
