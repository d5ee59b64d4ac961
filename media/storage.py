"""Content-addressed files on disk.

Served renditions: media/ab/abcdef... (the name is the sha256 of the bytes, so a URL never
changes meaning). Originals, kept for audit and never served: media/originals/ab/abcdef...
Uploads arrive in media/.incoming and are moved into place only once accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile

from core.errors import InvalidInput

CHUNK_BYTES = 1024 * 1024  # stream to disk; never hold a whole file


@dataclass(frozen=True)
class Received:
    path: Path
    sha256: str
    size: int


def media_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / sha256[:2] / sha256


def original_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / "originals" / sha256[:2] / sha256


def incoming_dir(media_dir: Path) -> Path:
    return media_dir / ".incoming"


def temp_file(media_dir: Path, suffix: str = "") -> Path:
    """A fresh file on the media volume (so moving it into place is a rename)."""
    directory = incoming_dir(media_dir)
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, suffix=suffix)
    os.close(fd)
    return Path(name)


async def receive_upload(upload: UploadFile, *, media_dir: Path, max_bytes: int) -> Received:
    """Copy an upload to disk while hashing it; the caller deletes the file when done."""
    path = await asyncio.to_thread(temp_file, media_dir)
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := await upload.read(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidInput(
                        f"file is larger than {max_bytes // (1024 * 1024)} MB",
                        detail={"field": "file"},
                    )
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise InvalidInput("file is empty", detail={"field": "file"})
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return Received(path, digest.hexdigest(), size)


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 and size, read in chunks (run it in a thread)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def move_into_place(src: Path, dest: Path) -> None:
    """Atomic within the volume; an existing file has the same bytes by construction."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
