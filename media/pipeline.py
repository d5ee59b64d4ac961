"""The audio pipeline: decode to validate, measure loudness, normalise, transcode.

Everything runs in ffmpeg child processes, so a long file neither blocks the event loop nor
sits in this process's memory: ffmpeg streams from disk to disk. (pydub, which decodes a
whole file into memory, would hold 600 MB for an hour of CD-quality stereo; it is used
only for short text-to-speech clips, see media/tts/.)

Two passes, as EBU R 128 practice recommends for files: the first decodes everything,
which is the validation (a damaged or truncated file fails here), and measures loudness
(ffmpeg's ebur128); the second applies one linear gain to reach the target, a limiter
that keeps peaks under the true-peak ceiling, and encodes each delivery profile.

Why not ffmpeg's loudnorm: it resamples to 192 kHz internally, which made it eight times
slower here (a 5-minute file: 12 s to measure and 15 s to render, against 1.4 s and 1.8 s;
docs/benchmarks.md). Its linear mode is the same gain-plus-ceiling idea.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInput
from wire.delivery import DeliveryProfile, LoudnessTarget

log = logging.getLogger(__name__)

# Shorter than this and the loudness measurement (400 ms blocks) means nothing.
MIN_AUDIO_S = 0.3
# Decoded this much shorter than the container declares: the file was cut off in transfer.
# (Both bounds: encoder padding makes short MP3s declare ~0.1 s more than they hold.)
TRUNCATION_TOLERANCE = 0.97
TRUNCATION_MIN_S = 0.5
# Quieter than this over the whole file: a muted microphone, not a bulletin.
SILENCE_LUFS = -60.0
# Never raise a quiet recording by more than this: beyond it, it is mostly noise.
MAX_GAIN_DB = 30.0
# Sample peaks are limited this far under the true-peak ceiling: inter-sample peaks and
# the MP3 encoder add a little.
LIMITER_MARGIN_DB = 0.5
# Deterministic output: the same upload becomes the same bytes (and the same sha256).
BITEXACT = ["-fflags", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]

# Container names ffprobe reports, mapped to what we call them; anything else is refused.
ACCEPTED_CONTAINERS = {
    "mp3": "mp3",
    "wav": "wav",
    "ogg": "ogg",
    "mov": "m4a",  # "mov,mp4,m4a,3gp,3g2,mj2"
    "flac": "flac",
    "matroska": "webm",  # "matroska,webm": what a browser's MediaRecorder writes
    "aac": "aac",
}
ACCEPTED_LABEL = "MP3, WAV, OGG/Opus, M4A/AAC, FLAC or WebM"


@dataclass(frozen=True)
class Loudness:
    """EBU R 128 measurement of the input, as ffmpeg's ebur128 reports it."""

    integrated: float
    true_peak: float
    lra: float
    threshold: float


@dataclass(frozen=True)
class Analysis:
    container: str
    declared_s: float | None
    decoded_s: float
    loudness: Loudness


def encoder_args(profile: DeliveryProfile) -> list[str]:
    """ffmpeg's output options for one delivery profile."""
    encoder = {"mp3": "libmp3lame", "opus": "libopus", "aac": "aac"}[profile.codec]
    muxer = {"mp3": "mp3", "opus": "ogg", "aac": "ipod"}[profile.codec]
    return [
        "-ac",
        str(profile.channels),
        "-ar",
        str(48000 if profile.codec == "opus" else profile.sample_rate),  # Opus runs at 48 kHz
        "-c:a",
        encoder,
        "-b:a",
        f"{profile.bitrate_kbps}k",
        "-f",
        muxer,
    ]


def loudness_filter(target: LoudnessTarget, measured: Loudness | None = None) -> str:
    """The measuring filter, or (given a measurement) the one correcting it to `target`."""
    if measured is None:
        return "ebur128=peak=true"
    gain = min(MAX_GAIN_DB, target.integrated - measured.integrated)
    ceiling = 10 ** ((target.true_peak - LIMITER_MARGIN_DB) / 20)
    return f"volume={gain:.2f}dB,alimiter=limit={ceiling:.4f}:level=false"


def refuse(reason: str) -> InvalidInput:
    return InvalidInput(reason, detail={"field": "file"})


async def run(args: list[str], *, timeout_s: float) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


async def probe(path: Path, *, max_s: float) -> tuple[str, float | None]:
    """Container and declared duration, refusing early what is plainly not audio or too
    long (before spending a decode on it)."""
    try:
        code, out, err = await run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "format=format_name,duration:stream=codec_type",
                "-of",
                "json",
                str(path),
            ],
            timeout_s=30,
        )
    except TimeoutError:
        raise refuse("the file could not be read in time") from None
    if code != 0:
        raise refuse(f"not a readable audio file: {_last_line(err) or 'unknown format'}")
    info = json.loads(out or b"{}")
    if "audio" not in [s.get("codec_type") for s in info.get("streams", [])]:
        raise refuse("the file has no audio in it")
    names = str(info.get("format", {}).get("format_name", "")).split(",")
    container = next((ACCEPTED_CONTAINERS[n] for n in names if n in ACCEPTED_CONTAINERS), None)
    if container is None:
        raise refuse(f"audio format {names[0]!r} is not accepted; send {ACCEPTED_LABEL}")
    declared = _float(info.get("format", {}).get("duration"))
    if declared is not None and declared > max_s:
        raise refuse(f"audio is {_minutes(declared)} long; the limit is {_minutes(max_s)}")
    return container, declared


async def analyse(path: Path, *, target: LoudnessTarget, max_s: float) -> Analysis:
    """Decode the whole file (the real validation) and measure its loudness."""
    container, declared = await probe(path, max_s=max_s)
    args = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-v",
        "info",
        "-i",
        str(path),
        "-vn",
        "-t",
        str(max_s + 1),  # a file without a declared length cannot run away with the CPU
        "-af",
        loudness_filter(target),
        "-progress",
        "pipe:1",
        "-f",
        "null",
        "-",
    ]
    try:
        code, out, err = await run(args, timeout_s=max(60.0, max_s / 4))
    except TimeoutError:
        raise refuse("decoding the audio took too long") from None
    text = err.decode(errors="replace")
    damage = [line for line in text.splitlines() if "Error while decoding" in line]
    decoded_s = _decoded_seconds(out)
    if code != 0 or damage:
        where = f" at {decoded_s:.1f} s" if decoded_s else ""
        raise refuse(f"the audio is damaged: decoding failed{where}")
    if decoded_s < MIN_AUDIO_S:
        raise refuse("the file has no playable audio")
    if decoded_s > max_s:
        raise refuse(f"audio is longer than the limit of {_minutes(max_s)}")
    missing_s = (declared or 0) - decoded_s
    if declared and decoded_s < declared * TRUNCATION_TOLERANCE and missing_s > TRUNCATION_MIN_S:
        raise refuse(
            f"the file is cut short: it declares {declared:.1f} s but only "
            f"{decoded_s:.1f} s can be decoded (upload it again)"
        )
    loudness = _loudness(text)
    if loudness.integrated < SILENCE_LUFS:
        raise refuse("the audio is silent: check the microphone and record again")
    return Analysis(container, declared, decoded_s, loudness)


async def render(
    source: Path,
    out: Path,
    *,
    profile: DeliveryProfile,
    target: LoudnessTarget,
    measured: Loudness,
    timeout_s: float,
) -> None:
    """Normalise to the target and encode one delivery profile."""
    args = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-i",
        str(source),
        "-vn",
        "-af",
        loudness_filter(target, measured),
        *BITEXACT,
        *encoder_args(profile),
        str(out),
    ]
    code, _, err = await run(args, timeout_s=timeout_s)
    if code != 0:
        log.error("transcode failed for %s: %s", source, err.decode(errors="replace")[-500:])
        raise refuse(f"the audio could not be converted: {_last_line(err)}")


async def duration_s(path: Path) -> float:
    """Duration of a file we produced ourselves (trusted container)."""
    code, out, _ = await run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        timeout_s=30,
    )
    value = _float(json.loads(out or b"{}").get("format", {}).get("duration")) if code == 0 else 0
    return value or 0.0


def _decoded_seconds(progress: bytes) -> float:
    values = re.findall(rb"out_time_us=(\d+)", progress)
    return int(values[-1]) / 1e6 if values else 0.0


def _loudness(stderr: str) -> Loudness:
    """Parse ebur128's summary (the last one in the log)."""
    summary = stderr[stderr.rfind("Summary:") :]
    values: dict[str, str] = {}
    pattern = r"^\s*(I|Threshold|LRA|Peak):\s*(-?[\d.]+|-?inf|nan)"
    for key, value in re.findall(pattern, summary, re.M):
        values.setdefault(key, value)  # the first Threshold is the integrated one
    try:
        return Loudness(
            integrated=_finite(values["I"]),
            true_peak=_finite(values["Peak"]),
            lra=_finite(values["LRA"]),
            threshold=_finite(values["Threshold"]),
        )
    except (ValueError, KeyError):
        raise refuse("the audio's loudness could not be measured") from None


def _finite(value: str) -> float:
    number = float(value)
    return number if math.isfinite(number) else -99.0


def _float(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _last_line(err: bytes) -> str:
    lines = err.decode(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else ""
