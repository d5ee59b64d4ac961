"""An emergency that names a standard warning (docs/protocol.md 11.1): its audio and title
come from the library, the play names the clip by sha256 and never carries it (every
cluster holds it), nothing is staged; an unknown or doubled source is refused naming
`warning`; the send goes through the same authority as any."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.broker import Broker
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually, listening
from wire import protocol

URL = "/api/v1/broadcasts"


async def _library(stack: Stack, clip: dict[str, Any]) -> None:
    put = await stack.client.put(
        "/api/v1/warnings/flood-evacuate",
        json={"title": "Lũ: sơ tán ngay", "media_sha256": clip["sha256"]},
    )
    assert put.status_code == 201, put.text


async def test_an_emergency_naming_a_warning_plays_its_clip_without_carrying_it(
    stack: Stack,
    broker: Broker,
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
    tone_wav: Path,
) -> None:
    province = await small_province(stack)
    fleet = fleet_factory(province.online(), time_compression=20)
    await fleet.start()
    clip = await upload(stack, tone_mp3)  # small: a first airing would ride in the command
    await _library(stack, clip)
    async with listening(broker, [protocol.area_command_topic("70")]) as (_, plays):
        sent = await stack.client.post(URL, json={"warning": "flood-evacuate", "areas": ["70"]})
        assert sent.status_code == 201, sent.text
        broadcast = sent.json()
        assert broadcast["media_sha256"] == clip["sha256"]
        assert broadcast["title"] == "Lũ: sơ tán ngay" and broadcast["class"] == "emergency"
        await stack.wait_broadcast(
            broadcast["id"], lambda b: counts(b, "played") == len(province.online())
        )
        [play] = [p for p in plays if p["broadcast"] == broadcast["id"]]
        assert play["kind"] == "play" and play["media"]["sha256"] == clip["sha256"]
        assert "data" not in play["media"], "the clusters hold it: not carried"
        assert play["media"]["url"], "a URL still, for a cluster that does not hold it"

        titled = await stack.client.post(
            URL,
            json={
                "warning": "flood-evacuate",
                "title": "Lũ sông Bé: sơ tán",
                "text": "Người dân vùng trũng di chuyển đến nơi an toàn ngay.",
                "areas": ["25195"],
            },
        )
        assert titled.status_code == 201, titled.text
        assert titled.json()["title"] == "Lũ sông Bé: sơ tán"
        assert titled.json()["text"].startswith("Người dân")  # what e-boards show

        # The same inline rule otherwise holds: a clip outside the library, first aired,
        # rides in the command.
        other = await upload(stack, tone_wav)
        fresh = await stack.client.post(
            URL, json={"title": "Khác", "media_sha256": other["sha256"], "areas": ["70"]}
        )
        assert fresh.status_code == 201, fresh.text
        carried = await eventually(
            lambda: _plays_of(plays, fresh.json()["id"]), bool, what="the other clip's play"
        )
        assert carried[0]["media"]["data"], "a first airing outside the library is carried"


async def _plays_of(plays: list[dict[str, Any]], broadcast_id: str) -> list[dict[str, Any]]:
    return [p for p in plays if p["broadcast"] == broadcast_id]


async def test_an_unknown_or_doubled_warning_is_refused_naming_it(
    stack: Stack, tone_mp3: Path
) -> None:
    await small_province(stack)
    clip = await upload(stack, tone_mp3)
    await _library(stack, clip)
    bulletin = await approved_bulletin(stack, media_sha256=clip["sha256"])
    refused = [
        ({"warning": "no-such-warning"}, 422, "warning"),
        ({"warning": "flood-evacuate", "media_sha256": clip["sha256"]}, 422, "warning"),
        ({"warning": "flood-evacuate", "stream_url": "http://h/s"}, 422, "warning"),
        ({"warning": "flood-evacuate", "bulletin_id": bulletin["id"]}, 422, "warning"),
        ({"warning": "flood-evacuate", "display_only": True, "text": "x"}, 422, "warning"),
        ({"warning": "lũ lụt"}, 422, "warning"),
        ({"warning": "flood-evacuate", "class": "priority"}, 409, "class"),
        ({"media_sha256": clip["sha256"]}, 422, "title"),  # no warning: a title is needed
    ]
    for body, status, field in refused:
        response = await stack.client.post(URL, json={**body, "areas": ["25216"]})
        assert response.status_code == status, (body, response.text)
        detail = response.json()["detail"]
        named = detail["field"] if isinstance(detail, dict) else detail[0]["field"]
        assert named == field, (body, response.text)
    assert (await stack.client.get(URL)).json()["total"] == 0, "nothing written"


async def test_naming_a_warning_asks_the_same_authority_as_any_send(
    stack: Stack, tone_mp3: Path
) -> None:
    await small_province(stack)
    await _library(stack, await upload(stack, tone_mp3))
    commune = {"x-actor": "xa.vien", "x-role": "commune_operator", "x-area": "25216"}
    refused = await stack.client.post(
        URL, json={"warning": "flood-evacuate", "areas": ["25216"]}, headers=commune
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"]["needs"] == "broadcast.emergency"
    officer = {"x-actor": "truc.ban", "x-role": "province_officer"}
    sent = await stack.client.post(
        URL, json={"warning": "flood-evacuate", "areas": ["25216"]}, headers=officer
    )
    assert sent.status_code == 201 and sent.json()["level"] == "province", sent.text
    log = (await stack.client.get("/api/v1/audit?action=broadcasts")).json()["items"]
    assert {e["detail"].get("warning") for e in log} == {"flood-evacuate"}


async def test_the_confirmation_stages_nothing_for_a_warning(stack: Stack, tone_mp3: Path) -> None:
    await small_province(stack)
    clip = await upload(stack, tone_mp3)
    await _library(stack, clip)
    reach = await stack.client.post(
        f"{URL}/reach", json={"areas": ["70"], "warning": "flood-evacuate"}
    )
    assert reach.status_code == 200, reach.text
    assert reach.json()["speakers"] > 0 and reach.json()["staged"] is None
    # The library's clip named by its sha256 is held all the same.
    by_sha = await stack.client.post(
        f"{URL}/reach", json={"areas": ["70"], "media_sha256": clip["sha256"]}
    )
    assert by_sha.status_code == 200 and by_sha.json()["staged"] is None, by_sha.text
    unknown = await stack.client.post(f"{URL}/reach", json={"areas": ["70"], "warning": "nope"})
    assert unknown.status_code == 422 and unknown.json()["detail"]["field"] == "warning"
    doubled = await stack.client.post(
        f"{URL}/reach",
        json={"areas": ["70"], "warning": "flood-evacuate", "media_sha256": clip["sha256"]},
    )
    assert doubled.status_code == 422 and doubled.json()["detail"][0]["field"] == "warning"
