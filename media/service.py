from __future__ import annotations

from fastapi import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.errors import NotFound
from core.settings import Settings
from media.models import MediaFile
from media.schemas import MediaRead
from media.storage import save_upload


class MediaNotFound(NotFound):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"media {sha256!r} not found", detail={"media": sha256})


def to_read(media: MediaFile, settings: Settings) -> MediaRead:
    return MediaRead(
        sha256=media.sha256,
        size=media.size,
        format=media.format,
        content_type=media.content_type,
        duration_ms=media.duration_ms,
        original_name=media.original_name,
        url=settings.media_url(media.sha256),
    )


async def get(*, session: AsyncSession, sha256: str) -> MediaFile:
    media = await session.get(MediaFile, sha256)
    if media is None:
        raise MediaNotFound(sha256)
    return media


async def ingest(
    *, session: AsyncSession, clock: Clock, settings: Settings, upload: UploadFile
) -> MediaRead:
    """Store an uploaded file by content; the same bytes uploaded twice are one row."""
    stored = await save_upload(
        upload, media_dir=settings.media_dir, max_bytes=settings.max_upload_bytes
    )
    media = await session.get(MediaFile, stored.sha256)
    if media is None:
        media = MediaFile(
            sha256=stored.sha256,
            size=stored.size,
            format=stored.format,
            content_type=stored.content_type,
            duration_ms=stored.duration_ms,
            original_name=(upload.filename or "")[:255] or None,
            created_at=clock.now(),
        )
        session.add(media)
        await session.flush()
    return to_read(media, settings)
