"""Bulletin content on both kinds of device: typed text read aloud by text-to-speech on
speaker clusters, and the same bulletin as text (and an image) on e-boards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from devstack.synth import still_image
from media.tts.speech import prepare
from simulator.fleet import Fleet
from simulator.provisioning import fetch_specs
from simulator.spec import DeviceSpec
from tests.broadcast.helpers import approved_bulletin, send, upload
from tests.factories import small_province
from tests.support import Stack, counts, two_profile_settings
from wire.protocol import DisplayStyle

TEXT = (
    "Khẩn cấp: lúc 14h30 ngày 23/11/2026 mực nước sông Bé đạt 12,75 m. "
    "Đề nghị bà con khẩn trương di dời đến nơi an toàn."
)


async def commune_with_eboard(stack: Stack) -> tuple[str, list[DeviceSpec]]:
    province = await small_province(stack, eboards=True)
    commune = "25216"
    return commune, province.of(commune)


async def test_an_emergency_goes_out_from_typed_text_alone(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    commune, specs = await commune_with_eboard(stack)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()

    sent = await send(stack, title="Cảnh báo lũ", areas=[commune], text=TEXT)
    done = await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(specs))
    assert done["text"] == TEXT and done["media_sha256"]

    media = (await stack.client.get(f"/api/v1/media/{sent['media_sha256']}")).json()
    assert media["original_name"] == "tts:espeak-ng:vi"
    assert media["format"] == "mp3" and media["duration_ms"] > 5000, "the text was spoken"
    speakers = [d for d in fleet.devices.values() if d.spec.kind == "speaker_cluster"]
    boards = [d for d in fleet.devices.values() if d.spec.kind == "eboard"]
    assert speakers and boards
    assert all(d.play_counts[sent["id"]] == 1 for d in speakers)
    for board in boards:
        shown = board.shown[-1]
        assert (shown.title, shown.body) == ("Cảnh báo lũ", TEXT)
        assert shown.style is DisplayStyle.EMERGENCY
        assert shown.duration_s == -(-media["duration_ms"] // 1000), "on screen while it plays"


async def test_eboards_fetch_the_image_and_show_it_for_the_display_time(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path, tmp_path: Path
) -> None:
    commune, specs = await commune_with_eboard(stack)
    fleet = fleet_factory(specs, time_compression=20)
    await fleet.start()
    picture = still_image(tmp_path / "map.png")
    with picture.open("rb") as f:
        response = await stack.client.post("/api/v1/media/images", files={"file": ("map.png", f)})
    assert response.status_code == 201, response.text
    image = response.json()
    assert (image["kind"], image["format"]) == ("image", "png")
    not_image = await stack.client.post(
        "/api/v1/media/images", files={"file": ("x.png", tone_mp3.read_bytes())}
    )
    assert not_image.status_code == 422 and not_image.json()["detail"]["field"] == "file"

    clip = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(
        stack,
        title="Lịch tiêm chủng",
        topic="y tế",
        media_sha256=clip["sha256"],
        image_sha256=image["sha256"],
        text="Tiêm chủng tại trạm y tế xã từ 7h đến 11h",
    )
    sent = await send(
        stack,
        title="Lịch tiêm chủng",
        areas=[commune],
        bulletin_id=bulletin["id"],
        display_s=40,
        **{"class": "priority"},
    )
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(specs))
    for board in (d for d in fleet.devices.values() if d.spec.kind == "eboard"):
        shown = board.shown[-1]
        assert shown.image is not None and shown.image.sha256 == image["sha256"]
        assert image["sha256"] in board._media_cache, "the board fetched and checked it"
        assert (shown.duration_s, shown.style) == (40, DisplayStyle.PRIORITY)

    swapped = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "x", "areas": [commune], "media_sha256": image["sha256"]},
    )
    assert swapped.status_code == 422 and swapped.json()["detail"]["field"] == "media_sha256"


async def test_speech_refuses_what_it_cannot_say(stack: Stack) -> None:
    cases = [
        ({"text": "  ", "language": "vi"}, "text"),
        ({"text": "Bonjour", "language": "fr"}, "language"),
        ({"text": "x" * 5001}, "text"),
    ]
    for body, field in cases:
        response = await stack.client.post("/api/v1/media/speech", json=body)
        assert response.status_code == 422, body
        detail = response.json()["detail"]
        named = detail["field"] if isinstance(detail, dict) else detail[0]["field"]
        assert named == field, (body, detail)
    spoken = await stack.client.post(
        "/api/v1/media/speech", json={"text": "Bản tin lúc 6h sáng", "language": "vi"}
    )
    assert spoken.status_code == 201 and spoken.json()["original"]["container"] == "wav"


def test_numbers_dates_and_times_are_spelt_out_before_speaking() -> None:
    said = prepare(TEXT, "vi")
    assert "mười bốn giờ ba mươi phút" in said
    assert "hai mươi ba tháng mười một" in said
    assert "mười hai phẩy bảy mươi lăm" in said
    assert prepare("Call 112 at 14:30", "en") == "Call 112 at 14:30", "only Vietnamese is read so"


async def test_a_cluster_model_plays_its_own_rendition(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    tone_wav: Path,
) -> None:
    stack = await stack_factory(**two_profile_settings())
    commune = "25216"
    speakers = (await small_province(stack)).speakers(commune)  # two: one of each model
    new_model = speakers[0].code
    patched = await stack.client.patch(f"/api/v1/clusters/{new_model}", json={"model": "LOA-X2"})
    assert patched.status_code == 200 and patched.json()["model"] == "LOA-X2"
    codes = {s.code for s in speakers}
    specs = [s for s in await fetch_specs(stack.settings.public_base_url) if s.code in codes]
    assert {s.code: s.profile for s in specs}[new_model] == "opus-24k"
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()

    media = await upload(stack, tone_wav)
    opus = next(r["sha256"] for r in media["renditions"] if r["profile"] == "opus-24k")
    sent = await send(stack, title="Thử loa", areas=[commune], media_sha256=media["sha256"])
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") >= len(specs))
    for code, device in fleet.devices.items():
        expected = opus if code == new_model else media["sha256"]
        assert list(device._media_cache) == [expected], code
