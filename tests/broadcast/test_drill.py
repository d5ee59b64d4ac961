"""A drill sent from typed text is an exercise everywhere: on the record, on the e-boards'
screens and in the voice (it opens with "Đây là tin diễn tập.")."""

from __future__ import annotations

from collections.abc import Callable

from simulator.fleet import Fleet
from tests.broadcast.helpers import send
from tests.factories import small_province
from tests.support import Stack, counts

COMMUNE = "25216"
TEXT = "Diễn tập phòng chống lũ: người dân vùng trũng tập trung tại nhà văn hoá."


async def test_a_drill_is_marked_on_screens_and_heard_as_one(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await small_province(stack, eboards=True)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    drill = await send(stack, title="Diễn tập lũ", areas=[COMMUNE], text=TEXT, drill=True)
    done = await stack.wait_broadcast(drill["id"], lambda b: counts(b, "played") == len(specs))
    assert done["drill"] is True
    aired = (await stack.client.get(f"/api/v1/media/{drill['media_sha256']}")).json()
    plain = await stack.client.post("/api/v1/media/speech", json={"text": TEXT, "language": "vi"})
    assert plain.status_code in (200, 201), plain.text
    assert aired["duration_ms"] > plain.json()["duration_ms"] + 1000  # the drill sentence first
    titles = {d.title for code in fleet.devices for d in fleet.devices[code].shown}
    assert "DIỄN TẬP / EXERCISE: Diễn tập lũ" in titles
