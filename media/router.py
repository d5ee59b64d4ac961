from __future__ import annotations

from fastapi import APIRouter, UploadFile, status
from fastapi.responses import FileResponse

from authority.reads import may_read_media
from core.errors import InvalidInput
from core.policy import Action
from core.schemas import file_name
from media import images, service, storage
from media.context import IngestingDep
from media.models import MediaFile
from media.schemas import MediaRead, SpeechCreate
from media.tts import speech
from web.deps import ActorDep, SessionDep
from web.guard import allow
from web.targets import From

router = APIRouter(tags=["media"])


@router.post(
    "/api/v1/media",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.MEDIA, From.ANYWHERE)],
)
async def upload_media(file: UploadFile, runtime: IngestingDep) -> MediaRead:
    """Upload audio (MP3, WAV, OGG/Opus, M4A/AAC, FLAC, WebM). It is decoded to check it,
    normalised to the loudness target, rendered for each delivery profile and stored by
    sha256; the original is kept for audit. The same upload twice is one item."""
    settings = runtime.settings
    name = file_name(file.filename)
    try:
        received = await storage.receive_upload(
            file, media_dir=settings.media_dir, max_bytes=settings.max_upload_bytes
        )
        return await service.ingest(
            runtime.ingest_context(),
            source=received.path,
            sha256=received.sha256,
            size=received.size,
            original_name=name,
        )
    except InvalidInput as exc:
        # Logged (rate-limited) and counted with device rejects: a district office sending
        # broken files over and over shows up at /api/v1/ingest.
        runtime.stats.reject(
            "media_refused",
            at=runtime.clock.now(),
            topic=f"upload {name or '(unnamed)'}",
            reason=exc.message,
            payload=b"",
        )
        raise


@router.post(
    "/api/v1/media/speech",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.MEDIA, From.ANYWHERE)],
)
async def speak(data: SpeechCreate, runtime: IngestingDep) -> MediaRead:
    """Text read aloud by the text-to-speech engine, framed by an attention chime, and
    stored like an upload (normalised, rendered per profile)."""
    return await speech.speak(runtime.ingest_context(), text=data.text, language=data.language)


@router.post(
    "/api/v1/media/images",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.MEDIA, From.ANYWHERE)],
)
async def upload_image(file: UploadFile, runtime: IngestingDep) -> MediaRead:
    """An image for e-boards (PNG, JPEG or WebP), checked by decoding."""
    image = await images.ingest_image(runtime.ingest_context(), file)
    async with runtime.writing() as session:
        stored = await session.get(MediaFile, image.sha256)
        if stored is None:
            session.add(image)
            stored = image
    return service.to_read(stored, runtime.settings)


@router.get("/api/v1/media/{sha256}", dependencies=[allow(Action.READ, From.ANYWHERE)])
async def read_media(
    sha256: str, session: SessionDep, runtime: IngestingDep, actor: ActorDep
) -> MediaRead:
    """A file's metadata; for people scoped to an area, only of what concerns it."""
    read = await service.get_read(session=session, settings=runtime.settings, sha256=sha256)
    await may_read_media(session, actor, sha256)
    return read


@router.get("/api/v1/media/{sha256}/file", dependencies=[allow(Action.READ, From.ANYWHERE)])
async def download_media(
    sha256: str, session: SessionDep, runtime: IngestingDep, actor: ActorDep
) -> FileResponse:
    """The rendition itself, for people previewing it (clusters use signed /media URLs);
    for people scoped to an area, only what a bulletin or broadcast of theirs carries."""
    media = await service.get(session=session, sha256=sha256)
    await may_read_media(session, actor, sha256)
    return FileResponse(
        storage.media_path(runtime.settings.media_dir, media.sha256),
        media_type=media.content_type,
        headers={"etag": f'"{media.sha256}"'},
    )
