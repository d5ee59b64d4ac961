from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Request, Response, UploadFile, status
from fastapi.responses import FileResponse

from app.deps import RuntimeDep, SessionDep
from core.errors import NotFound
from media import service
from media.schemas import MediaRead
from media.storage import media_path

router = APIRouter(tags=["media"])

IMMUTABLE = "public, max-age=31536000, immutable"  # content-addressed: bytes never change


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


@router.get("/media/{sha256}", response_model=None)
async def download_media(sha256: str, request: Request, runtime: RuntimeDep) -> Response:
    """The bytes clusters download; no database on this path (it takes a province at once)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound(f"media {sha256!r} not found", detail={"media": sha256})
    path: Path = media_path(runtime.settings.media_dir, sha256)
    etag = f'"{sha256}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"etag": etag})
    if not await asyncio.to_thread(path.is_file):
        raise NotFound(f"media {sha256!r} not found", detail={"media": sha256})
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={"etag": etag, "cache-control": IMMUTABLE},
    )
