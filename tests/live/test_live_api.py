"""Live voice through the API and the CLI's sender: real ffmpeg at both ends, a real
broker, simulated clusters that relay the stream as devices do (docs/protocol.md 4.4.1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app import live_sender
from devstack.synth import tone
from simulator.fleet import Fleet
from tests.factories import small_province
from tests.live.helpers import COMMUNE, dominant_hz, ended, go_live, heard, ws_url
from tests.support import Stack, counts

TONE_HZ = 660


@pytest.fixture(scope="session")
def spoken(audio_dir: Path) -> Path:
    """Two seconds of the officer's 'voice': a 660 Hz tone."""
    return tone(audio_dir / "live-2s.wav", 2, source=f"sine=frequency={TONE_HZ}", sample_rate=48000)


async def test_every_cluster_plays_the_voice_and_played_after_the_end(
    stack: Stack, fleet_factory: Callable[..., Fleet], spoken: Path
) -> None:
    specs = (await small_province(stack, clusters_per_commune=2)).speakers(COMMUNE)
    fleet = fleet_factory(specs)
    fleet.env.keep_live_audio = True
    await fleet.start()
    session = await go_live(stack)
    broadcast_id = session["broadcast_id"]
    # Silence flows before the first word: every cluster is playing already.
    await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "playing") == len(specs))

    sent = await live_sender.send(ws_url(stack, session["audio_path"]), str(spoken))
    assert sent.final is not None and sent.final["status"] in ("ending", "ended")
    done = await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "played") == len(specs))
    assert done["live"] is True and done["total"] == len(specs)

    record = await ended(stack, broadcast_id)
    assert record["end_reason"] == "ended by admin"
    assert abs(record["recorded_ms"] - 2000) <= 500, record
    assert record["recording_sha256"], record
    media = (await stack.client.get(f"/api/v1/media/{record['recording_sha256']}")).json()
    assert abs(media["duration_ms"] - 2000) <= 500, media
    bulletin = (await stack.client.get(f"/api/v1/bulletins/{record['bulletin_id']}")).json()
    assert bulletin["status"] == "submitted" and bulletin["aired_live"] is True
    assert bulletin["media_sha256"] == record["recording_sha256"]
    streams = [heard(d, broadcast_id) for d in fleet.devices.values()]
    for device, audio in zip(fleet.devices.values(), streams, strict=True):
        assert len(audio) == device.stream_bytes[broadcast_id], "bytes arrived without a gap"
        assert abs(dominant_hz(audio) - TONE_HZ) < 15, device.spec.code
    offsets = [d.live_audio[broadcast_id][0] for d in fleet.devices.values()]
    first = max(offsets)  # every cluster heard the same stream where they overlap
    common = [a[first - o :] for a, o in zip(streams, offsets, strict=True)]
    shortest = min(len(c) for c in common)
    assert shortest > 16_000 and len({c[:shortest] for c in common}) == 1
