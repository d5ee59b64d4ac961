from __future__ import annotations

from fastapi import APIRouter, UploadFile, status

from app.deps import RuntimeDep, SessionDep
from media import service
from media.schemas import MediaRead

router = APIRouter(tags=["media"])


@router.post("/api/v1/media", status_code=status.HTTP_201_CREATED)
async def upload_media(file: UploadFile, session: SessionDep, runtime: RuntimeDep) -> MediaRead:
    """Upload an MP3 or WAV; it is checked by decoding, stored by sha256."""
    return await service.ingest(
        session=session, clock=runtime.clock, settings=runtime.settings, upload=file
    )


@router.get("/api/v1/media/{sha256}")
async def read_media(sha256: str, session: SessionDep, runtime: RuntimeDep) -> MediaRead:
    media = await service.get(session=session, sha256=sha256)
    return service.to_read(media, runtime.settings)
