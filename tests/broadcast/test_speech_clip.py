"""A spoken emergency (issue 24): a clip too large to ride in the command at the default
profile rides in it as the compact speech rendition (settings.emergency_speech_profile),
which the clusters hold from then on; `received` still means the cluster holds the file
and checked its sha256 (docs/protocol.md 4.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from broadcast.commands import Content
from core.settings import Settings
from devstack.broker import Broker
from devstack.synth import tone
from simulator.fleet import Fleet
from simulator.provisioning import fetch_specs
from tests.broadcast.helpers import approved_bulletin, send, upload, watch_inline
from tests.factories import small_province
from tests.support import Stack, counts, eventually, listening, two_profile_settings
from wire import protocol

COMMUNE = "25216"
SPEECH = "mp3-speech-16k"
# A voice's fundamental with a syllable rhythm (four a second): sized like speech, not a
# steady tone.
VOICE = "aevalsrc=0.3*sin(2*PI*180*t)*(0.6+0.4*sin(2*PI*4*t))+0.05*sin(2*PI*720*t)"


@pytest.fixture
def speech_20s(audio_dir: Path) -> Path:
    return tone(audio_dir / "speech-20s.mp3", 20, source=VOICE)


def rendition(media: dict[str, Any], profile: str) -> dict[str, Any] | None:
    return next((r for r in media["renditions"] if r["profile"] == profile), None)


async def test_a_short_upload_gets_a_speech_rendition_that_fits_and_a_long_one_none(
    stack: Stack, speech_20s: Path, audio_dir: Path
) -> None:
    media = await upload(stack, speech_20s)
    speech = rendition(media, SPEECH)
    assert speech is not None
    assert media["size"] > stack.settings.inline_media_max_bytes, "too large at 64 kbit/s"
    assert speech["size"] <= stack.settings.inline_media_max_bytes
    assert media["sha256"] == rendition(media, "mp3-mono-64k")["sha256"]  # type: ignore[index]

    long = await upload(stack, tone(audio_dir / "speech-30s.mp3", 30, source=VOICE))
    assert [r["profile"] for r in long["renditions"]] == ["mp3-mono-64k"]


async def test_a_spoken_emergency_rides_in_the_command_as_its_speech_rendition(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    speech_20s: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = await stack_factory(resend_cap_s=1.0)
    speakers = (await small_province(stack, clusters_per_commune=2)).speakers(COMMUNE)
    codes = [s.code for s in speakers]
    late = codes[-1]  # "-09": offline at the send, reached by a re-send
    fleet = fleet_factory(speakers, time_compression=40)
    await fleet.start(codes[:-1])
    media = await upload(stack, speech_20s)
    speech = rendition(media, SPEECH)
    assert speech is not None
    carried = watch_inline(stack, monkeypatch)

    sent = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    assert sent["media_sha256"] == media["sha256"], "the record names what was sent"
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(codes) - 1)
    assert carried and carried[0] is not None
    await fleet.start([late])
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(codes))
    assert all(data is not None for data in carried), "the re-send carries it too"
    for code, device in fleet.devices.items():
        assert (device.inline_held, device.inline_refused, device.downloads) == (1, 0, 0), code
        assert list(device._media_cache) == [speech["sha256"]], code

    # Aired again: the clusters hold the speech rendition, so the play names it, bare.
    carried.clear()
    again = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    await stack.wait_broadcast(again["id"], lambda b: counts(b, "played") == len(codes))
    assert carried == [None]
    assert fleet.count(lambda d: (d.inline_held, d.downloads) == (1, 0)) == len(codes)

    # A normal broadcast keeps the default rendition, which the clusters fetch.
    bulletin = await approved_bulletin(stack, title="Bản tin", media_sha256=media["sha256"])
    normal = await send(stack, areas=[COMMUNE], bulletin_id=bulletin["id"], **{"class": "normal"})
    await stack.wait_broadcast(normal["id"], lambda b: counts(b, "played") == len(codes))
    for code, device in fleet.devices.items():
        assert device.downloads == 1, code
        assert set(device._media_cache) == {speech["sha256"], media["sha256"]}, code


async def test_a_wrong_inline_speech_copy_is_refused_and_that_rendition_downloaded(
    stack: Stack,
    fleet_factory: Callable[..., Fleet],
    speech_20s: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    speakers = (await small_province(stack, clusters_per_commune=2)).speakers(COMMUNE)
    fleet = fleet_factory(speakers, time_compression=40)
    await fleet.start()
    media = await upload(stack, speech_20s)
    speech = rendition(media, SPEECH)
    assert speech is not None

    async def other_bytes(content: Content) -> str:
        return protocol.inline_data(b"not the clip the command names")

    monkeypatch.setattr(stack.runtime.require_dispatcher(), "inline_data", other_bytes)
    sent = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(speakers))
    for code, device in fleet.devices.items():
        assert (device.inline_held, device.inline_refused, device.downloads) == (0, 1, 1), code
        assert list(device._media_cache) == [speech["sha256"]], code


async def test_a_model_with_its_own_profile_still_plays_its_alternate(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    speech_20s: Path,
) -> None:
    stack = await stack_factory(**two_profile_settings())
    speakers = (await small_province(stack)).speakers(COMMUNE)
    new_model = speakers[0].code
    patched = await stack.client.patch(f"/api/v1/clusters/{new_model}", json={"model": "LOA-X2"})
    assert patched.status_code == 200, patched.text
    codes = {s.code for s in speakers}
    specs = [s for s in await fetch_specs(stack.settings.public_base_url) if s.code in codes]
    fleet = fleet_factory(specs, time_compression=40)
    await fleet.start()
    media = await upload(stack, speech_20s)
    speech, opus = rendition(media, SPEECH), rendition(media, "opus-24k")
    assert speech is not None and opus is not None

    sent = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(specs))
    for code, device in fleet.devices.items():
        if code == new_model:
            assert (device.inline_held, device.downloads) == (0, 1), code
            assert list(device._media_cache) == [opus["sha256"]], code
        else:
            assert (device.inline_held, device.downloads) == (1, 0), code
            assert list(device._media_cache) == [speech["sha256"]], code


async def test_with_the_setting_empty_an_emergency_downloads_the_default(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    speech_20s: Path,
) -> None:
    stack = await stack_factory(emergency_speech_profile="")
    speakers = (await small_province(stack, clusters_per_commune=2)).speakers(COMMUNE)
    fleet = fleet_factory(speakers, time_compression=40)
    await fleet.start()
    media = await upload(stack, speech_20s)
    assert [r["profile"] for r in media["renditions"]] == ["mp3-mono-64k"]

    sent = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(speakers))
    for code, device in fleet.devices.items():
        assert (device.inline_held, device.downloads) == (0, 1), code
        assert list(device._media_cache) == [media["sha256"]], code


def test_a_deployment_without_the_speech_profile_is_told_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BROADCAST_DELIVERY_PROFILES", '{"mp3-mono-64k": {}}')
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "BROADCAST_EMERGENCY_SPEECH_PROFILE names 'mp3-speech-16k'" in message
    assert "add it there" in message and "set BROADCAST_EMERGENCY_SPEECH_PROFILE empty" in message

    monkeypatch.setenv("BROADCAST_EMERGENCY_SPEECH_PROFILE", "")
    off = Settings()
    assert off.speech_max_s == 0 and off.profiles_to_render(10) == ["mp3-mono-64k"]


def test_the_speech_bound_follows_the_inline_bound() -> None:
    settings = Settings()
    assert settings.speech_max_s == pytest.approx(22.53, abs=0.01)  # 45,056 B / 2,000 B/s
    assert settings.profiles_to_render(22.0) == ["mp3-mono-64k", SPEECH]
    assert settings.profiles_to_render(30.0) == ["mp3-mono-64k"]
    assert settings.profiles_to_render(None) == ["mp3-mono-64k", SPEECH]  # not known yet
    assert Settings(inline_media_max_bytes=0).profiles_to_render(5.0) == ["mp3-mono-64k"]


async def test_nothing_is_staged_for_it_and_a_standard_warning_keeps_the_default(
    stack: Stack, broker: Broker, speech_20s: Path
) -> None:
    await small_province(stack)
    media = await upload(stack, speech_20s)
    reach = await stack.client.post(
        "/api/v1/broadcasts/reach", json={"areas": [COMMUNE], "media_sha256": media["sha256"]}
    )
    assert reach.status_code == 200, reach.text
    staged = reach.json()["staged"]
    assert staged["inline"] and not staged["published"], "the play will carry it"

    # In the library every cluster holds the default rendition (protocol 11.1): an
    # emergency naming the warning names that one, bare.
    put = await stack.client.put(
        "/api/v1/warnings/flood-evacuate",
        json={"title": "Lũ: sơ tán ngay", "media_sha256": media["sha256"]},
    )
    assert put.status_code == 201, put.text
    async with listening(broker, [protocol.area_command_topic(COMMUNE)]) as (_, plays):
        sent = await stack.client.post(
            "/api/v1/broadcasts", json={"warning": "flood-evacuate", "areas": [COMMUNE]}
        )
        assert sent.status_code == 201, sent.text

        async def played() -> list[dict[str, Any]]:
            return [p for p in plays if p["broadcast"] == sent.json()["id"]]

        [play] = await eventually(played, bool, what="the warning's play")
        assert play["media"]["sha256"] == media["sha256"] and "data" not in play["media"]
