"""E-board images: checked by decoding (ffprobe), stored as uploaded, by sha256."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fastapi import UploadFile

from core.schemas import file_name
from media import pipeline, storage
from media.models import MediaFile
from media.service import IngestContext

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # a full-HD photo; boards are at most 1920x1080
MAX_IMAGE_PIXELS = 4096 * 4096
IMAGE_FORMATS = {"png_pipe": "png", "jpeg_pipe": "jpeg", "webp_pipe": "webp"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


async def ingest_image(ctx: IngestContext, upload: UploadFile) -> MediaFile:
    received = await storage.receive_upload(
        upload, media_dir=ctx.settings.media_dir, max_bytes=MAX_IMAGE_BYTES
    )
    try:
        fmt = await _probe(received.path)
        await asyncio.to_thread(
            storage.move_into_place,
            received.path,
            storage.media_path(ctx.settings.media_dir, received.sha256),
        )
    finally:
        await asyncio.to_thread(received.path.unlink, missing_ok=True)
    return MediaFile(
        sha256=received.sha256,
        size=received.size,
        format=fmt,
        content_type=CONTENT_TYPES[fmt],
        duration_ms=0,
        original_name=file_name(upload.filename),
        created_at=ctx.clock.now(),
        kind="image",
    )


async def _probe(path: Path) -> str:
    code, out, _ = await pipeline.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=format_name:stream=width,height",
            "-of",
            "json",
            str(path),
        ],
        timeout_s=30,
    )
    if code != 0:
        raise pipeline.refuse("not a readable image (PNG, JPEG or WebP)")
    info = json.loads(out or b"{}")
    fmt = IMAGE_FORMATS.get(str(info.get("format", {}).get("format_name", "")))
    streams = info.get("streams") or [{}]
    width, height = int(streams[0].get("width") or 0), int(streams[0].get("height") or 0)
    if fmt is None or not width or not height:
        raise pipeline.refuse("not a PNG, JPEG or WebP image")
    if width * height > MAX_IMAGE_PIXELS:
        raise pipeline.refuse(f"image is {width}x{height}; the limit is 4096x4096")
    return fmt
