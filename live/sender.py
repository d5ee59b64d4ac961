"""The officer's side of a live session without a browser: ffmpeg encodes a file, stdin
or the microphone to WebM/Opus as MediaRecorder does, and each piece it writes goes over
the session's WebSocket as it is made (`broadcast live`, the tests, the benchmark)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets

# As a browser's MediaRecorder with a 200 ms timeslice: Opus in 20 ms frames, a WebM
# cluster at most every 200 ms, each written as soon as it closes.
OPUS_TO_WEBM = [
    "-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-application", "voip",
    "-frame_duration", "20", "-f", "webm", "-cluster_time_limit", "200",
    "-live", "1", "-flush_packets", "1", "pipe:1",
]  # fmt: skip
READ_BYTES = 16 * 1024


def input_args(source: str) -> list[str]:
    """ffmpeg's input: `-` stdin (any format ffmpeg reads), `mic` the default ALSA/Pulse
    capture device, else a file, read at its own pace (`-re`) as a person speaks."""
    if source == "-":
        return ["-re", "-i", "pipe:0"]
    if source == "mic":
        return ["-f", "pulse", "-i", "default"]
    return ["-re", "-i", source]


@dataclass
class Sent:
    """What went over the WebSocket: bytes, and when the encoder started (the first
    sample's moment, for latency)."""

    bytes: int = 0
    started_at: float = 0.0
    final: dict[str, Any] | None = None


async def send(
    ws_url: str,
    source: str,
    *,
    headers: dict[str, str] | None = None,
    end: bool = True,
    stop_after_s: float | None = None,
    stdin: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> Sent:
    """Encode `source` and send it; then "end" (the session plays out and finishes) or,
    with `end=False`, just close (a dropped link). `stop_after_s`: cut off that early."""
    sent = Sent()
    # Connected first, then the encoder started: the first words are not spoken into a
    # connection still being made (and the session's grace for a missing officer starts
    # when it goes live, so the link should come up at once).
    async with websockets.connect(ws_url, additional_headers=headers or {}) as ws:
        process = await asyncio.create_subprocess_exec(
            "ffmpeg", "-hide_banner", "-loglevel", "error", *input_args(source), *OPUS_TO_WEBM,
            stdin=stdin, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        sent.started_at = time.time()
        try:
            deadline = None if stop_after_s is None else time.monotonic() + stop_after_s
            while data := await process.stdout.read(READ_BYTES):
                await ws.send(data)
                sent.bytes += len(data)
                if on_chunk is not None:
                    on_chunk(len(data))
                if deadline is not None and time.monotonic() >= deadline:
                    break
            if end:
                await ws.send("end")
                reply = await ws.recv()
                sent.final = json.loads(reply)
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
    return sent


def ws_url(api_url: str, audio_path: str) -> str:
    return (
        api_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/")
        + audio_path
    )
