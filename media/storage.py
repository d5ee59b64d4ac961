"""Content-addressed media files on disk: var/media/ab/abcdef....mp3 by sha256."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile

from core.errors import InvalidInput

UPLOAD_CHUNK_BYTES = 1024 * 1024  # stream uploads to disk; never hold a whole file
FFPROBE_TIMEOUT_S = 30
# What the clusters can play as delivered in v1 (issue: the audio pipeline will transcode).
ACCEPTED_FORMATS = {"mp3": "audio/mpeg", "wav": "audio/wav"}


@dataclass(frozen=True)
class StoredMedia:
    sha256: str
    size: int
    format: str
    content_type: str
    duration_ms: int
    path: Path


def media_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / sha256[:2] / sha256


async def save_upload(upload: UploadFile, *, media_dir: Path, max_bytes: int) -> StoredMedia:
    """Stream an upload to disk while hashing it, probe it, then move it into place."""
    await asyncio.to_thread(media_dir.mkdir, parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=media_dir, prefix=".upload-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await upload.read(UPLOAD_CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidInput(
                        f"file is larger than {max_bytes} bytes", detail={"field": "file"}
                    )
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise InvalidInput("file is empty", detail={"field": "file"})
        fmt, duration_ms = await probe_audio(tmp)
        sha256 = digest.hexdigest()
        final = media_path(media_dir, sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return StoredMedia(sha256, size, fmt, ACCEPTED_FORMATS[fmt], duration_ms, final)
    finally:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)


async def probe_audio(path: Path) -> tuple[str, int]:
    """Decode-level check with ffprobe: format and duration, or a clear refusal."""
    proc = await asyncio.create_subprocess_exec(
        "ffprobe",
        "-v",
        "error",
        "-show_entries",
        "format=format_name,duration:stream=codec_type",
        "-of",
        "json",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), FFPROBE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        raise InvalidInput("audio probe timed out", detail={"field": "file"}) from None
    if proc.returncode != 0:
        reason = err.decode(errors="replace").strip().splitlines()[-1:] or ["not audio"]
        raise InvalidInput(f"not a readable audio file: {reason[0]}", detail={"field": "file"})
    info = json.loads(out or b"{}")
    streams = [s.get("codec_type") for s in info.get("streams", [])]
    if "audio" not in streams:
        raise InvalidInput("file has no audio stream", detail={"field": "file"})
    format_name = info.get("format", {}).get("format_name", "")
    fmt = next((f for f in ACCEPTED_FORMATS if f in format_name.split(",")), None)
    if fmt is None:
        raise InvalidInput(
            f"audio format {format_name!r} not accepted (MP3 or WAV)", detail={"field": "file"}
        )
    duration = float(info.get("format", {}).get("duration") or 0)
    if duration <= 0:
        raise InvalidInput("audio has no duration", detail={"field": "file"})
    return fmt, round(duration * 1000)
