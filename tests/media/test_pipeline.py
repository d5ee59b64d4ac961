"""The audio pipeline end to end through the API: real ffmpeg on generated audio."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.database import session_scope
from devstack.synth import tone
from media import pipeline, storage
from media.models import MediaOriginal
from tests.broadcast.helpers import upload
from tests.support import Stack, two_profile_settings
from wire.delivery import LoudnessTarget

StackFactory = Callable[..., Awaitable[Stack]]


def stream_info(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    info: dict[str, Any] = json.loads(out)
    return info


def served_file(stack: Stack, sha256: str) -> Path:
    return storage.media_path(stack.settings.media_dir, sha256)


@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".ogg", ".m4a", ".flac", ".webm"])
async def test_every_accepted_format_becomes_the_delivery_format(
    stack: Stack, tmp_path: Path, suffix: str
) -> None:
    source = tone(tmp_path / f"bulletin{suffix}", 3, sample_rate=22050)
    media = await upload(stack, source)

    assert media["format"] == "mp3" and media["profile"] == "mp3-mono-64k"
    assert 2800 <= media["duration_ms"] <= 3200
    assert media["original"]["container"] == suffix.lstrip(".")
    info = stream_info(served_file(stack, media["sha256"]))
    audio = info["streams"][0]
    assert (audio["codec_name"], audio["channels"], audio["sample_rate"]) == ("mp3", 1, "44100")
    assert 56_000 <= int(audio["bit_rate"]) <= 72_000
    original = storage.original_path(stack.settings.media_dir, media["original"]["sha256"])
    assert original.read_bytes() == source.read_bytes(), "the original is kept, byte for byte"


async def test_quiet_and_loud_uploads_come_out_at_the_target_loudness(
    stack: Stack, tmp_path: Path
) -> None:
    # -40 dBFS and -1 dBFS sines: a far-off microphone and a clipped one.
    quiet = tone(tmp_path / "quiet.wav", 4, source="aevalsrc=0.01*sin(2*PI*300*t)")
    loud = tone(tmp_path / "loud.wav", 4, source="aevalsrc=0.9*sin(2*PI*900*t)")
    results = []
    for path in (quiet, loud):
        media = await upload(stack, path)
        measured = await pipeline.analyse(
            served_file(stack, media["sha256"]), target=LoudnessTarget(), max_s=60
        )
        results.append((media["original"]["loudness_lufs"], measured.loudness.integrated))
    (quiet_in, quiet_out), (loud_in, loud_out) = results
    assert loud_in - quiet_in > 20, "the inputs really differ"
    assert abs(quiet_out - stack.settings.loudness_lufs) <= 1.5
    assert abs(loud_out - stack.settings.loudness_lufs) <= 1.5


def cut_in_half(path: Path, dest: Path) -> Path:
    data = path.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


async def test_bad_audio_is_refused_with_the_reason_and_leaves_nothing(
    stack_factory: StackFactory, tmp_path: Path
) -> None:
    stack = await stack_factory(max_audio_s=20)
    long_wav = tone(tmp_path / "long.wav", 25, sample_rate=8000)
    whole_mp3 = tone(tmp_path / "whole.mp3", 10)
    whole_wav = tone(tmp_path / "whole.wav", 10)
    silent = tone(tmp_path / "silent.wav", 3, source="anullsrc=r=22050:cl=mono")
    cases = {
        "empty.mp3": (b"", "empty"),
        "notes.mp3": (b"this is a text file with an mp3 name\n" * 50, "not a readable audio"),
        "half.wav": (cut_in_half(whole_wav, tmp_path / "h.wav").read_bytes(), "damaged"),
        "half.mp3": (cut_in_half(whole_mp3, tmp_path / "h.mp3").read_bytes(), "cut short"),
        "long.wav": (long_wav.read_bytes(), "limit"),
        "silent.wav": (silent.read_bytes(), "silent"),
    }
    for name, (data, reason) in cases.items():
        response = await stack.client.post("/api/v1/media", files={"file": (name, data)})
        assert response.status_code == 422, f"{name}: {response.text}"
        body = response.json()
        assert body["detail"]["field"] == "file"
        assert reason in body["error"], f"{name}: {body['error']}"
    files = [p for p in stack.settings.media_dir.rglob("*") if p.is_file()]
    assert files == [], "a refused upload left a file behind"
    async with session_scope(stack.runtime.sessions) as session:
        assert await session.scalar(select(func.count()).select_from(MediaOriginal)) == 0
    assert (await stack.client.get("/healthz")).status_code == 200
    ingest = (await stack.client.get("/api/v1/ingest")).json()
    assert ingest["counts"]["media_refused"] == len(cases), "each refusal is counted"
    assert {r["topic"] for r in ingest["recent_rejects"]} >= {"upload half.wav", "upload long.wav"}


async def test_the_same_upload_twice_is_one_item(stack: Stack, tone_wav: Path) -> None:
    first = await upload(stack, tone_wav)
    second = await upload(stack, tone_wav)
    assert first == second
    async with session_scope(stack.runtime.sessions) as session:
        assert await session.scalar(select(func.count()).select_from(MediaOriginal)) == 1


async def test_each_delivery_profile_gets_its_rendition(
    stack_factory: StackFactory, tone_wav: Path
) -> None:
    stack = await stack_factory(**two_profile_settings())
    media = await upload(stack, tone_wav)
    by_profile = {r["profile"]: r for r in media["renditions"]}
    # A short clip also gets the emergency's compact speech rendition.
    assert set(by_profile) == {"mp3-mono-64k", "opus-24k", "mp3-speech-16k"}
    assert media["sha256"] == by_profile["mp3-mono-64k"]["sha256"], "broadcasts name the default"
    opus = stream_info(served_file(stack, by_profile["opus-24k"]["sha256"]))
    assert opus["streams"][0]["codec_name"] == "opus"
    preview = await stack.client.get(f"/api/v1/media/{media['sha256']}/file")
    assert preview.status_code == 200 and preview.headers["content-type"] == "audio/mpeg"
