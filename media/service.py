"""Media logic: ingest through the pipeline, renditions per delivery profile, lookups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import Clock
from core.database import session_scope
from core.errors import NotFound
from core.settings import Settings
from core.writes import Writing
from media import pipeline, storage
from media.models import MediaFile, MediaOriginal
from media.schemas import MediaRead, OriginalRead, RenditionRead


class MediaNotFound(NotFound):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"media {sha256!r} not found", detail={"media": sha256})


@dataclass(frozen=True)
class IngestContext:
    """What an ingest needs from the running process (not a request's session: a long
    transcode must not hold a database transaction open)."""

    sessions: async_sessionmaker[AsyncSession]
    writing: Writing
    slots: asyncio.Semaphore  # transcodes at once
    clock: Clock
    settings: Settings


def to_read(
    media: MediaFile,
    settings: Settings,
    *,
    original: MediaOriginal | None = None,
    renditions: list[MediaFile] | None = None,
) -> MediaRead:
    return MediaRead(
        sha256=media.sha256,
        kind=media.kind,
        size=media.size,
        format=media.format,
        content_type=media.content_type,
        duration_ms=media.duration_ms,
        original_name=media.original_name,
        url=f"{settings.public_base_url.rstrip('/')}/api/v1/media/{media.sha256}/file",
        profile=media.profile,
        original=(
            OriginalRead(
                sha256=original.sha256,
                size=original.size,
                container=original.container,
                duration_ms=original.duration_ms,
                loudness_lufs=original.loudness_lufs,
            )
            if original
            else None
        ),
        renditions=[
            RenditionRead(
                profile=r.profile or "",
                sha256=r.sha256,
                size=r.size,
                format=r.format,
                duration_ms=r.duration_ms,
            )
            for r in renditions or []
        ],
    )


async def get(*, session: AsyncSession, sha256: str) -> MediaFile:
    media = await session.get(MediaFile, sha256)
    if media is None:
        raise MediaNotFound(sha256)
    return media


async def get_read(*, session: AsyncSession, settings: Settings, sha256: str) -> MediaRead:
    media = await get(session=session, sha256=sha256)
    if media.source_sha256 is None:
        return to_read(media, settings)
    original = await session.get(MediaOriginal, media.source_sha256)
    return to_read(
        media,
        settings,
        original=original,
        renditions=await renditions_of(session, media.source_sha256),
    )


async def renditions_of(session: AsyncSession, source_sha256: str) -> list[MediaFile]:
    rows = await session.scalars(
        select(MediaFile)
        .where(MediaFile.source_sha256 == source_sha256)
        .order_by(MediaFile.profile)
    )
    return list(rows)


async def alternates(
    session: AsyncSession, settings: Settings, media: MediaFile
) -> dict[str, MediaFile]:
    """The renditions of the same upload that clusters of a model with a profile of its
    own play instead of `media`, by profile name. A device provisioned with the default
    profile finds none of its own and plays `media` (docs/protocol.md 4.2), so an
    emergency led by the speech rendition is not fetched again at 64 kbit/s."""
    if media.source_sha256 is None:
        return {}
    own = set(settings.model_profiles.values())
    return {
        r.profile: r
        for r in await renditions_of(session, media.source_sha256)
        if r.profile in own and r.sha256 != media.sha256
    }


async def compact_rendition(
    session: AsyncSession, settings: Settings, media: MediaFile
) -> MediaFile | None:
    """The speech rendition of `media`'s upload when it rides in a command and `media`
    does not (settings.emergency_speech_profile); None otherwise."""
    limit = settings.inline_media_max_bytes
    speech = settings.emergency_speech_profile
    if not speech or media.size <= limit or media.source_sha256 is None:
        return None
    renditions = await renditions_of(session, media.source_sha256)
    found = next((r for r in renditions if r.profile == speech), None)
    return found if found is not None and found.size <= limit else None


async def ingest(
    ctx: IngestContext, *, source: Path, sha256: str, size: int, original_name: str | None
) -> MediaRead:
    """Validate, normalise and render an accepted file; idempotent by the original's
    sha256. `source` is consumed: kept as the original, or deleted."""
    settings = ctx.settings
    try:
        async with session_scope(ctx.sessions) as session:
            original = await session.get(MediaOriginal, sha256)
            done = {r.profile: r.sha256 for r in await renditions_of(session, sha256)}
        known_s = original.duration_ms / 1000 if original is not None else None
        missing = [p for p in settings.profiles_to_render(known_s) if p not in done]
        rendered: list[MediaFile] = []
        if missing:
            async with ctx.slots:
                rendered, analysis = await _render_all(ctx, source, missing)
            if original is None:
                original = MediaOriginal(
                    sha256=sha256,
                    size=size,
                    container=analysis.container,
                    duration_ms=round(analysis.decoded_s * 1000),
                    loudness_lufs=analysis.loudness.integrated,
                    original_name=original_name,
                    created_at=ctx.clock.now(),
                )
            dest = storage.original_path(settings.media_dir, sha256)
            await asyncio.to_thread(storage.move_into_place, source, dest)
            for r in rendered:
                r.source_sha256 = sha256
                r.original_name = original_name
            async with ctx.writing() as session:
                if await session.get(MediaOriginal, sha256) is None:
                    session.add(original)
                    await session.flush()
                for r in rendered:
                    if await session.get(MediaFile, r.sha256) is None:
                        session.add(r)
        done |= {r.profile: r.sha256 for r in rendered if r.profile}
        async with session_scope(ctx.sessions) as session:
            return await get_read(
                session=session, settings=settings, sha256=done[settings.default_delivery_profile]
            )
    finally:
        await asyncio.to_thread(source.unlink, missing_ok=True)


async def _render_all(
    ctx: IngestContext, source: Path, profiles: list[str]
) -> tuple[list[MediaFile], pipeline.Analysis]:
    settings = ctx.settings
    target = settings.loudness_target
    analysis = await pipeline.analyse(source, target=target, max_s=settings.max_audio_s)
    wanted = settings.profiles_to_render(analysis.decoded_s)  # the length is known now
    rendered: list[MediaFile] = []
    for name in (p for p in profiles if p in wanted):
        profile = settings.delivery_profiles[name]
        out = await asyncio.to_thread(
            storage.temp_file, settings.media_dir, f".{profile.extension}"
        )
        try:
            await pipeline.render(
                source,
                out,
                profile=profile,
                target=target,
                measured=analysis.loudness,
                timeout_s=max(120.0, analysis.decoded_s),
            )
            sha, size = await asyncio.to_thread(storage.hash_file, out)
            duration = await pipeline.duration_s(out)
            await asyncio.to_thread(
                storage.move_into_place, out, storage.media_path(settings.media_dir, sha)
            )
        finally:
            await asyncio.to_thread(out.unlink, missing_ok=True)
        rendered.append(
            MediaFile(
                sha256=sha,
                size=size,
                format=profile.extension,
                content_type=profile.content_type,
                duration_ms=round(duration * 1000),
                original_name=None,
                created_at=ctx.clock.now(),
                kind="audio",
                profile=name,
            )
        )
    return rendered, analysis
