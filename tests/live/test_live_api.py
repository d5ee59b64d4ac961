"""Live voice through the API and the CLI's sender: real ffmpeg at both ends, a real
broker, simulated clusters that relay the stream as devices do (docs/protocol.md 4.4.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import websockets
from sqlalchemy import func, select

from broadcast.models import Broadcast
from bulletins.models import Bulletin
from core.database import session_scope
from devstack.synth import tone
from live import sender as live_sender
from live.models import LiveSession
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.live.helpers import (
    COMMUNE,
    OTHER_COMMUNE,
    dominant_hz,
    ended,
    go_live,
    heard,
    live_state,
    ws_url,
)
from tests.schedules.test_on_the_clusters import local
from tests.security.helpers import make_user, signed_in
from tests.support import Stack, counts, eventually

TONE_HZ = 660


@pytest.fixture(scope="session")
def spoken(audio_dir: Path) -> Path:
    """Two seconds of the officer's 'voice': a 660 Hz tone."""
    return tone(audio_dir / "live-2s.wav", 2, source=f"sine=frequency={TONE_HZ}", sample_rate=48000)


@pytest.fixture(scope="session")
def speech_long(audio_dir: Path) -> Path:
    """Thirty seconds: the officer is still speaking whenever the test stops the session."""
    return tone(
        audio_dir / "live-30s.wav", 30, source=f"sine=frequency={TONE_HZ}", sample_rate=48000
    )


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


async def test_a_commune_operator_is_refused_another_commune_and_emergency(
    stack: Stack,
) -> None:
    await small_province(stack)
    await make_user(stack, "van.hanh", role="commune_operator", area=COMMUNE)
    operator = {"Authorization": f"Bearer {await signed_in(stack, 'van.hanh')}"}
    before = await _rows(stack)
    elsewhere = await stack.client.post(
        "/api/v1/live", json={"class": "normal", "areas": [OTHER_COMMUNE]}, headers=operator
    )
    assert elsewhere.status_code == 403, elsewhere.text
    assert elsewhere.json()["detail"]["missing"] == "area"
    assert elsewhere.json()["detail"]["area"] == OTHER_COMMUNE
    emergency = await stack.client.post(
        "/api/v1/live", json={"class": "emergency", "areas": [COMMUNE]}, headers=operator
    )
    assert emergency.status_code == 403, emergency.text
    assert emergency.json()["detail"]["field"] == "class"
    assert await _rows(stack) == before, "a refusal writes nothing"
    # Its own commune, at its own class: allowed, and at the commune's level.
    own = await go_live(stack, operator, **{"class": "normal"})
    assert own["status"] == "live" and own["started_by"] == "van.hanh"
    sent = await stack.broadcast(own["broadcast_id"])
    assert sent["level"] == "commune" and sent["class"] == "normal"
    # A second normal session on the same clusters is refused, naming the one on air.
    again = await stack.client.post(
        "/api/v1/live", json={"class": "normal", "areas": [COMMUNE]}, headers=operator
    )
    assert again.status_code == 409 and again.json()["detail"]["live"] == own["broadcast_id"]
    await stack.client.post(f"/api/v1/live/{own['broadcast_id']}/end", headers=operator)
    record = await ended(stack, own["broadcast_id"])
    assert record["recording_problem"] == "nothing was said"


async def _rows(stack: Stack) -> tuple[int, int, int]:
    async with session_scope(stack.runtime.sessions) as session:
        return (
            await session.scalar(select(func.count()).select_from(Broadcast)) or 0,
            await session.scalar(select(func.count()).select_from(Bulletin)) or 0,
            await session.scalar(select(func.count()).select_from(LiveSession)) or 0,
        )


async def test_a_dropped_link_carries_silence_and_the_voice_resumes(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    spoken: Path,
) -> None:
    stack = await stack_factory(live_grace_s=5.0)
    specs = (await small_province(stack)).speakers(COMMUNE)
    fleet = fleet_factory(specs)
    await fleet.start()
    session = await go_live(stack)
    broadcast_id, url = session["broadcast_id"], ws_url(stack, session["audio_path"])
    await live_sender.send(url, str(spoken), end=False, stop_after_s=1.0)  # the link drops
    state = await eventually(
        lambda: live_state(stack, broadcast_id),
        lambda s: not s["officer_connected"],
        what="the server to see the officer gone",
    )
    assert state["status"] == "live"
    await asyncio.sleep(1.5)  # the outage itself: shorter than the grace (5 s)
    progress = await stack.broadcast(broadcast_id)
    assert counts(progress, "playing") == len(specs), "the clusters kept playing"
    await live_sender.send(url, str(spoken))  # back, says the rest, and ends
    await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "played") == len(specs))
    record = await ended(stack, broadcast_id)
    assert record["end_reason"] == "ended by admin"
    assert record["gaps_ms"] >= 1000, record  # silence carried for the outage


async def test_a_link_lost_past_the_grace_ends_the_session_and_stops_the_clusters(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    spoken: Path,
) -> None:
    # 3 s: the grace also runs from going live to the officer's first connection, which
    # took more than 1 s on a loaded machine (four test workers on two cores).
    stack = await stack_factory(live_grace_s=3.0)
    specs = (await small_province(stack)).speakers(COMMUNE)
    fleet = fleet_factory(specs)
    await fleet.start()
    session = await go_live(stack)
    broadcast_id = session["broadcast_id"]
    await live_sender.send(
        ws_url(stack, session["audio_path"]), str(spoken), end=False, stop_after_s=0.5
    )
    record = await ended(stack, broadcast_id)
    assert record["end_reason"] == "the officer's link was lost for more than 3 s"
    done = await stack.wait_broadcast(
        broadcast_id, lambda b: b["stops_confirmed"] == len(specs), what="every cluster stopped"
    )
    assert done["status"] == "canceled" and counts(done, "canceled") == len(specs)
    assert all(broadcast_id in d.cancels for d in fleet.devices.values())


async def test_an_emergency_live_session_preempts_a_scheduled_item(
    stack: Stack, fleet_factory: Callable[..., Fleet], long_mp3: Path, spoken: Path
) -> None:
    specs = (await small_province(stack)).speakers(COMMUNE)
    fleet = fleet_factory(specs)
    await fleet.start()
    clip = await upload(stack, long_mp3)  # 30 s: still playing when the officer speaks
    bulletin = await approved_bulletin(stack, title="Thông báo", media_sha256=clip["sha256"])
    slot = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    created = await stack.client.post(
        "/api/v1/schedules",
        json={
            "title": "Thông báo tiêm phòng",
            "bulletin_id": bulletin["id"],
            "starts_local": local(slot),
            "areas": [COMMUNE],
        },
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    scheduled = await eventually(
        lambda: _fired(stack, schedule_id), lambda b: b is not None, what="the slot fired"
    )
    assert scheduled is not None
    await stack.wait_broadcast(scheduled, lambda b: counts(b, "playing") == len(specs))

    session = await go_live(stack)  # an emergency
    await stack.wait_broadcast(scheduled, lambda b: counts(b, "preempted") == len(specs))
    await live_sender.send(ws_url(stack, session["audio_path"]), str(spoken))
    await stack.wait_broadcast(session["broadcast_id"], lambda b: counts(b, "played") == len(specs))


async def _fired(stack: Stack, schedule_id: str) -> str | None:
    response = await stack.client.get(f"/api/v1/schedules/{schedule_id}/firings")
    firings = response.json()
    items = firings if isinstance(firings, list) else firings.get("items", [])
    return next((f["broadcast_id"] for f in items if f.get("broadcast_id")), None)


async def test_a_cancel_from_another_console_stops_the_session(
    stack: Stack, fleet_factory: Callable[..., Fleet], speech_long: Path
) -> None:
    specs = (await small_province(stack)).speakers(COMMUNE)
    fleet = fleet_factory(specs)
    await fleet.start()
    await make_user(stack, "van.hanh", role="commune_operator", area=COMMUNE)
    operator = {"Authorization": f"Bearer {await signed_in(stack, 'van.hanh')}"}
    session = await go_live(stack, operator, **{"class": "priority"})
    broadcast_id = session["broadcast_id"]
    await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "playing") == len(specs))
    # Still speaking when the cancel comes (a 2 s clip could end first on a loaded machine,
    # and its "end" would be answered with the record instead of a close).
    speaking = asyncio.create_task(
        live_sender.send(ws_url(stack, session["audio_path"]), str(speech_long), headers=operator)
    )
    await eventually(
        lambda: live_state(stack, broadcast_id),
        lambda s: bool(s["officer_connected"]),
        what="the officer's link",
    )
    # The duty officer, at another console, stops it (the development administrator here).
    cancel = await stack.client.post(f"/api/v1/broadcasts/{broadcast_id}/cancel")
    assert cancel.status_code == 200, cancel.text
    record = await ended(stack, broadcast_id)
    assert record["end_reason"] == "the broadcast was canceled"
    await stack.wait_broadcast(broadcast_id, lambda b: b["stops_confirmed"] == len(specs))
    # The officer's connection is closed with the reason, not left sending into nothing.
    with pytest.raises(websockets.ConnectionClosedOK):
        await asyncio.wait_for(speaking, 10)
