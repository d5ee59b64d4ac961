from __future__ import annotations

import subprocess
from typing import Any

from simulator.device import SimulatedCluster
from tests.support import Stack, eventually

COMMUNE = "25216"
OTHER_COMMUNE = "25231"
WINDOW = 480
LOUD = 2000  # of 32,767: speech or a tone, not the silence carried for a gap


async def go_live(stack: Stack, headers: dict[str, str] | None = None, **body: Any) -> Any:
    response = await stack.client.post(
        "/api/v1/live",
        json={"title": "Thông báo trực tiếp", "class": "emergency", "areas": [COMMUNE], **body},
        headers=headers or {},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def live_state(stack: Stack, broadcast_id: str) -> dict[str, Any]:
    response = await stack.client.get(f"/api/v1/live/{broadcast_id}")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


async def ended(stack: Stack, broadcast_id: str, *, recorded: bool = True) -> dict[str, Any]:
    """The session's record once it has ended (and its recording is kept)."""
    return await eventually(
        lambda: live_state(stack, broadcast_id),
        lambda s: (
            s["status"] == "ended"
            and (not recorded or bool(s["recording_sha256"] or s["recording_problem"]))
        ),
        what="the live session's record",
    )


def ws_url(stack: Stack, audio_path: str) -> str:
    return stack.settings.public_base_url.replace("http://", "ws://") + audio_path


def dominant_hz(mp3: bytes) -> float:
    """The tone's frequency in what a cluster received: decoded by ffmpeg, counted in
    zero crossings over the loud samples."""
    pcm = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "mp3", "-i", "pipe:0",
         "-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1"],
        input=mp3, capture_output=True, check=True,
    ).stdout  # fmt: skip
    samples = memoryview(pcm).cast("h")
    crossings = counted = sign = 0
    for start in range(0, len(samples) - WINDOW, WINDOW):  # 10 ms windows, all loud
        window = samples[start : start + WINDOW]
        if min(max(window), -min(window)) < LOUD:
            sign = 0  # a quiet window: the next loud one starts afresh
            continue
        counted += WINDOW
        for s in window:  # with hysteresis: noise around zero is not a crossing
            now = 1 if s > LOUD // 2 else -1 if s < -LOUD // 2 else sign
            crossings += sign != 0 and now != sign
            sign = now
    return crossings / 2 / (counted / 48000) if counted else 0.0


def heard(device: SimulatedCluster, broadcast_id: str) -> bytes:
    return bytes(device.live_audio[broadcast_id][1])
