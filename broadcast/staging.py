"""Staging a clip at the confirmation step: while the duty officer reads how many clusters
will sound, they fetch and verify it, so the send finds it held (docs/protocol.md 4.2).

Nothing is written: a stage command is a head start, never a delivery. A cluster that
misses it downloads at the send as before; a clip that changed before the send is not the
one staged (the play names its sha256); staged and never sent, it expires on the clusters.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from authority import Deed, authorise_aimed
from broadcast import repository, service
from broadcast.context import Sending
from broadcast.dispatch import load_content
from broadcast.schemas import ReachRequest, Staged
from bulletins import service as bulletin_service
from core.actors import Actor
from core.errors import InvalidInput
from media.models import MediaFile
from standard_warnings import repository as warning_repository

STAGE_PREFIX = "stage-"  # a stage command's id and broadcast: never a broadcast's


async def stage(
    *, session: AsyncSession, runtime: Sending, data: ReachRequest, actor: Actor
) -> Staged | None:
    """Publish a stage command for the request's audio to its targets, if the actor may
    send it there; None when there is no audio to fetch (a relay, text to be spoken, a
    standard warning the clusters hold)."""
    level = await authorise_aimed(session, actor, Deed.SEND, data)
    sha256 = data.media_sha256
    now = runtime.clock.now()
    if data.bulletin_id is not None:
        bulletin = await bulletin_service.get(session=session, bulletin_id=data.bulletin_id)
        bulletin_service.airable(bulletin, data.cls, now)
        sha256 = bulletin.media_sha256
    if sha256 is None or await warning_repository.holds(session, sha256):
        return None  # a standard warning's clip: every cluster holds it (protocol 11.1)
    media = await session.get(MediaFile, sha256)
    if media is None or media.kind != "audio":
        raise InvalidInput("media_sha256 is not audio we hold", detail={"field": "media_sha256"})
    # The rendition the play will lead with (an emergency's compact one rides in it).
    aired = await service.aired_rendition(session, runtime.settings, cls=data.cls, media=media)
    content = await load_content(
        session, runtime.settings, media_sha256=aired.sha256, image_sha256=None
    )
    if await repository.aired_before(session, media_sha256=aired.sha256, broadcast_id=""):
        content = replace(content, first_airing=False)  # the play will not carry it
    assert content.audio is not None
    expires_at = now + timedelta(seconds=runtime.settings.stage_ttl_s)
    stage_id = f"{STAGE_PREFIX}{uuid.uuid4()}"
    dispatcher = runtime.require_dispatcher()
    if await dispatcher.inline_data(content) is not None:
        # The play will carry the clip itself: staging it would only add a download.
        return Staged(
            id=stage_id, media_sha256=sha256, expires_at=expires_at, inline=True, published=False
        )
    targets = await service.addressed(session, data.areas, data.clusters)
    published = await dispatcher.publish_stage(
        stage_id=stage_id,
        cls=data.cls.value,
        level=level.value,
        title="",
        media=content.audio,
        areas=[a.code for a in targets.cover],
        clusters=[code for _, code in targets.extra],
        expires_at=expires_at,
    )
    return Staged(id=stage_id, media_sha256=sha256, expires_at=expires_at, published=published)
