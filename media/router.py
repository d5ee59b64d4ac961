from __future__ import annotations

from fastapi import APIRouter, UploadFile, status
from fastapi.responses import FileResponse

from app.deps import RuntimeDep, SessionDep
from media import service, storage
from media.schemas import MediaRead

router = APIRouter(tags=["media"])


@router.post("/api/v1/media", status_code=status.HTTP_201_CREATED)
async def upload_media(file: UploadFile, runtime: RuntimeDep) -> MediaRead:
    """Upload audio (MP3, WAV, OGG/Opus, M4A/AAC, FLAC, WebM). It is decoded to check it,
    normalised to the loudness target, rendered for each delivery profile and stored by
    sha256; the original is kept for audit. The same upload twice is one item."""
    settings = runtime.settings
    received = await storage.receive_upload(
        file, media_dir=settings.media_dir, max_bytes=settings.max_upload_bytes
    )
    return await service.ingest(
        runtime.ingest_context(),
        source=received.path,
        sha256=received.sha256,
        size=received.size,
        original_name=(file.filename or "")[:255] or None,
    )


@router.get("/api/v1/media/{sha256}")
async def read_media(sha256: str, session: SessionDep, runtime: RuntimeDep) -> MediaRead:
    return await service.get_read(session=session, settings=runtime.settings, sha256=sha256)


@router.get("/api/v1/media/{sha256}/file")
async def download_media(sha256: str, session: SessionDep, runtime: RuntimeDep) -> FileResponse:
    """The rendition itself, for people previewing it (clusters use signed /media URLs)."""
    media = await service.get(session=session, sha256=sha256)
    return FileResponse(
        storage.media_path(runtime.settings.media_dir, media.sha256),
        media_type=media.content_type,
        headers={"etag": f'"{media.sha256}"'},
    )
