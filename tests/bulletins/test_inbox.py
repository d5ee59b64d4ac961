"""Circular 39/2020 from above: a normal bulletin waits in each commune's inbox until the
commune accepts it; priority and emergency go on air at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import DISTRICTS, small_province
from tests.support import Stack, counts

DUTY = {"x-actor": "truc.ban", "x-role": "province_officer"}
# District 689 with four communes: three that act on what is sent down, one left waiting.
FOUR_COMMUNES = {**DISTRICTS, "689": [*DISTRICTS["689"], "25198", "25201"]}


def operator(commune: str) -> dict[str, str]:
    return {"x-actor": f"xa.{commune}", "x-role": "commune_operator", "x-area": commune}


async def test_normal_waits_in_the_inbox_and_the_commune_decides(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    province = await small_province(stack, districts=FOUR_COMMUNES)
    district = "689"
    communes = sorted({s.areas[-1] for s in province.of(district)})
    first, second = communes[0], communes[1]
    fleet = fleet_factory(province.of(first), time_compression=10)
    await fleet.start()
    clip = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, title="Lịch tiêm phòng", media_sha256=clip["sha256"])
    url = f"/api/v1/bulletins/{bulletin['id']}/distribute"

    refused = await stack.client.post(url, json={"areas": [district]}, headers=operator(first))
    assert refused.status_code == 403, "a commune does not send down"
    sent = await stack.client.post(url, json={"areas": [district]}, headers=DUTY)
    assert sent.status_code == 200, sent.text
    assert sent.json() == {
        "communes": len(communes),
        "inbox_items": len(communes),
        "broadcast_id": None,
    }
    assert (await stack.client.get("/api/v1/broadcasts")).json()["total"] == 0, "nothing aired"

    inbox = (await stack.client.get("/api/v1/inbox", headers=operator(first))).json()
    [item] = inbox["items"]
    assert (item["area_code"], item["status"], item["class"]) == (first, "pending", "normal")
    assert item["sender"] == "truc.ban" and item["bulletin"]["title"] == "Lịch tiêm phòng"
    others = (await stack.client.get("/api/v1/inbox", params={"area": second})).json()
    other_id = others["items"][0]["id"]

    foreign = await stack.client.post(f"/api/v1/inbox/{other_id}/accept", headers=operator(first))
    assert foreign.status_code == 403, "a commune handles its own inbox only"
    accepted = await stack.client.post(
        f"/api/v1/inbox/{item['id']}/accept", headers=operator(first)
    )
    assert accepted.status_code == 200, accepted.text
    done = accepted.json()
    assert (done["status"], done["handled_by"]) == ("accepted", f"xa.{first}")
    n = len(fleet)
    await stack.wait_broadcast(done["broadcast_id"], lambda b: counts(b, "played") == n)
    twice = await stack.client.post(f"/api/v1/inbox/{item['id']}/accept", headers=operator(first))
    assert twice.status_code == 409

    # Two operators of one commune press "accept" at the same moment: it airs once.
    third = communes[2]
    [pending] = (await stack.client.get("/api/v1/inbox", params={"area": third})).json()["items"]
    before = (await stack.client.get("/api/v1/broadcasts")).json()["total"]
    both = await asyncio.gather(
        *(
            stack.client.post(f"/api/v1/inbox/{pending['id']}/accept", headers=operator(third))
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in both) == [200, 409]
    assert (await stack.client.get("/api/v1/broadcasts")).json()["total"] == before + 1

    declined = await stack.client.post(
        f"/api/v1/inbox/{other_id}/decline",
        json={"note": "đã phát trên loa khác"},
        headers=operator(second),
    )
    assert declined.json()["status"] == "declined"
    district_view = (await stack.client.get("/api/v1/inbox", params={"area": district})).json()
    statuses = {i["area_code"]: i["status"] for i in district_view["items"]}
    assert statuses[first] == "accepted" and statuses[second] == "declined"
    assert list(statuses.values()).count("pending") == len(communes) - 3


async def test_priority_from_above_airs_at_once_and_is_recorded_in_the_inboxes(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    commune = "25216"
    fleet = fleet_factory((await small_province(stack)).of(commune), time_compression=10)
    await fleet.start()
    clip = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(
        stack, title="Cảnh báo nắng nóng", media_sha256=clip["sha256"]
    )
    sent = await stack.client.post(
        f"/api/v1/bulletins/{bulletin['id']}/distribute",
        json={"areas": [commune], "class": "priority"},
        headers=DUTY,
    )
    assert sent.status_code == 200, sent.text
    broadcast_id = sent.json()["broadcast_id"]
    n = len(fleet)
    done = await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "played") == n)
    assert (done["class"], done["level"]) == ("priority", "province")
    inbox = (await stack.client.get("/api/v1/inbox", params={"area": commune})).json()
    [item] = inbox["items"]
    assert (item["status"], item["broadcast_id"], item["class"]) == (
        "aired",
        broadcast_id,
        "priority",
    )
