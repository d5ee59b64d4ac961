"""Display-only broadcasts: text on the e-boards of the areas, no sound, no speaker cluster
addressed (a held CAP alert's text is shown this way while a person voices it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.fleet import Fleet
from tests.factories import add_eboard, small_province
from tests.support import Stack, counts
from wire.protocol import DisplayStyle

COMMUNE = "25216"  # gets an e-board here; 25231 has none
BOARD = f"EB-{COMMUNE}"
NOTICE = "Mất điện khu vực ấp 3 từ 8h đến 11h ngày 05/12"


async def test_a_display_only_broadcast_reaches_the_eboards_and_no_speaker(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    province = await small_province(stack)
    board = await add_eboard(stack, COMMUNE, BOARD)
    speaker = next(s for s in province.online() if COMMUNE in s.areas)
    fleet = fleet_factory([board, speaker], time_compression=10)
    await fleet.start()

    response = await stack.client.post(
        "/api/v1/broadcasts",
        json={
            "title": "Thông báo mất điện",
            "class": "emergency",  # other classes go out as approved bulletins
            "areas": [COMMUNE],
            "text": NOTICE,
            "display_only": True,
            "display_s": 20,
        },
    )
    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["display_only"] and sent["media_sha256"] is None, "nothing was spoken"
    assert (sent["target_areas"], sent["target_clusters"]) == ([], [BOARD])
    assert sent["total"] == 1, "one delivery: the e-board's"

    done = await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == 1)
    assert done["total"] == 1
    shown = fleet.devices[BOARD].shown[-1]
    assert (shown.title, shown.body, shown.duration_s) == ("Thông báo mất điện", NOTICE, 20)
    assert shown.style is DisplayStyle.EMERGENCY
    assert sent["id"] not in fleet.devices[speaker.code].play_counts, "no speaker was told"


async def test_display_only_is_refused_without_text_with_sound_or_with_no_eboard(
    stack: Stack,
) -> None:
    await small_province(stack)
    await add_eboard(stack, COMMUNE, BOARD)
    base = {"title": "Thông báo", "class": "emergency", "areas": [COMMUNE], "display_only": True}
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "text"),
        ({"text": "x", "stream_url": "http://127.0.0.1:9/live"}, "stream_url"),
        ({"text": "x", "media_sha256": "0" * 64}, "media_sha256"),
        ({"text": "x", "areas": ["25231"]}, "areas"),  # a commune without an e-board
    ]
    for extra, field in cases:
        response = await stack.client.post("/api/v1/broadcasts", json={**base, **extra})
        assert response.status_code == 422, (extra, response.text)
        detail = response.json()["detail"]
        named = {d["field"] for d in detail} if isinstance(detail, list) else {detail["field"]}
        assert named == {field}, (field, response.text)
    listed = (await stack.client.get("/api/v1/broadcasts")).json()
    assert listed["total"] == 0, "nothing was written"
