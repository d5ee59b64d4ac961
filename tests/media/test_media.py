"""Upload (checked by decoding), content addressing, and serving with Range and ETag."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.broadcast.helpers import upload
from tests.support import Stack


async def test_mp3_and_wav_are_stored_by_content(
    stack: Stack, tone_mp3: Path, tone_wav: Path
) -> None:
    mp3 = await upload(stack, tone_mp3)
    assert mp3["sha256"] == hashlib.sha256(tone_mp3.read_bytes()).hexdigest()
    assert mp3["format"] == "mp3" and 900 <= mp3["duration_ms"] <= 1200
    wav = await upload(stack, tone_wav)
    assert wav["format"] == "wav" and 950 <= wav["duration_ms"] <= 1050
    again = await upload(stack, tone_mp3)
    assert again == mp3, "the same bytes are one media item"


async def test_files_that_are_not_audio_are_refused(stack: Stack, tmp_path: Path) -> None:
    cases = {
        "empty.mp3": b"",
        "text.mp3": b"this is not audio at all, whatever its name says\n" * 20,
        "truncated.wav": b"RIFF\x24\x08\x00\x00WAVEfmt ",
    }
    for name, data in cases.items():
        response = await stack.client.post("/api/v1/media", files={"file": (name, data)})
        assert response.status_code == 422, f"{name}: {response.text}"
        assert response.json()["detail"]["field"] == "file"
    listing = (
        list((stack.settings.media_dir).rglob("*")) if stack.settings.media_dir.exists() else []
    )
    assert not [p for p in listing if p.is_file()], "a refused upload left a file behind"


async def test_download_supports_etag_and_range(stack: Stack, tone_mp3: Path) -> None:
    media = await upload(stack, tone_mp3)
    data = tone_mp3.read_bytes()
    url = f"/media/{media['sha256']}"
    full = await stack.client.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["etag"] == f'"{media["sha256"]}"'
    assert "immutable" in full.headers["cache-control"]

    cached = await stack.client.get(url, headers={"if-none-match": full.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""

    part = await stack.client.get(url, headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]

    missing = await stack.client.get(f"/media/{'0' * 64}")
    assert missing.status_code == 404
    assert (await stack.client.get("/media/../../etc/passwd")).status_code == 404
    assert media["url"].endswith(url)
