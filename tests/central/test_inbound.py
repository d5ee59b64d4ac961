"""Bulletins from the central level in JSON, in the three classes of Circular 39:
emergency and priority go on air at once, normal waits in the communes' inboxes; updates
replace, cancels stop, copies are recognised; bad requests name the field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from simulator.fleet import Fleet
from tests.factories import small_province
from tests.security.helpers import make_user, signed_in
from tests.support import Stack, counts

COMMUNE, DISTRICT, PROVINCE = "25216", "689", "70"
NEIGHBOUR = "25195"  # the other commune of the district
SENDER = "ttttn.trung-uong.gov.vn"


def bulletin(identifier: str, cls: str, areas: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "sender": SENDER,
        "sent": datetime.now(UTC).isoformat(),
        "class": cls,
        "areas": areas,
        "topic": "disaster",
        "texts": [
            {
                "language": "vi",
                "title": "Cảnh báo lũ trên sông Bé",
                "text": "Mực nước sông Bé đang lên nhanh.",
                "instruction": "Người dân di chuyển lên vùng cao.",
            }
        ],
        **fields,
    }


async def post(stack: Stack, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await stack.client.post("/api/v1/central/inbox", json=body, headers=headers)


async def test_an_emergency_from_the_centre_airs_at_once_in_both_languages(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await small_province(stack)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    body = bulletin("TW-2026-11-24-01", "emergency", [COMMUNE])
    body["texts"].append(
        {"language": "en", "title": "Flood warning", "text": "The Be river is rising fast."}
    )
    response = await post(stack, body)
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert (receipt["outcome"], receipt["source"]) == ("accepted", "central-json")
    done = await stack.wait_broadcast(
        receipt["broadcast_id"], lambda b: counts(b, "played") == len(specs)
    )
    assert (done["class"], done["level"], done["drill"]) == ("emergency", "central", False)
    assert done["title"] == "Cảnh báo lũ trên sông Bé" and "rising fast" in done["text"]
    media = (await stack.client.get(f"/api/v1/media/{done['media_sha256']}")).json()
    assert media["original_name"] == "tts:espeak-ng:vi+en"  # both, Vietnamese first
    assert fleet.count(lambda d: d.play_counts[done["id"]] == 1) == len(specs)
    kept = (await stack.client.get(f"/api/v1/bulletins/{done['bulletin_id']}")).json()
    assert (kept["status"], kept["topic"]) == ("approved", "disaster")

    again = await post(stack, body)  # an upstream retry: recognised, not aired twice
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert again.json()["broadcast_id"] == done["id"]
    listed = (await stack.client.get("/api/v1/broadcasts", params={"limit": 50})).json()
    assert len(listed["items"]) == 1


async def test_priority_airs_and_normal_waits_in_the_inboxes_under_the_province(
    stack: Stack,
) -> None:
    await small_province(stack)
    priority = await post(stack, bulletin("TW-UT-1", "priority", [COMMUNE]))
    assert priority.status_code == 201, priority.text
    sent = await stack.broadcast(priority.json()["broadcast_id"])
    assert (sent["class"], sent["level"]) == ("priority", "central")

    normal = await post(stack, bulletin("TW-TT-1", "normal", [DISTRICT], topic="policy"))
    assert normal.status_code == 201, normal.text
    assert normal.json()["broadcast_id"] is None  # the commune decides
    communes = (await stack.client.get(f"/api/v1/areas?parent={DISTRICT}&level=commune")).json()
    # The province's view of its inbox: everything from above, in every commune.
    inbox = (await stack.client.get(f"/api/v1/inbox?area={PROVINCE}&limit=500")).json()["items"]
    waiting = [i for i in inbox if i["status"] == "pending"]
    assert len(waiting) == communes["total"] > 1
    assert {(i["class"], i["sender_level"], i["bulletin"]["topic"]) for i in waiting} == {
        ("normal", "central", "policy")
    }
    aired = [i for i in inbox if i["status"] == "aired"]
    assert [(i["area_code"], i["class"]) for i in aired] == [(COMMUNE, "priority")]


async def test_an_update_replaces_and_a_cancel_stops_what_the_centre_sent(stack: Stack) -> None:
    await small_province(stack)
    first = await post(stack, bulletin("TW-BAO-9", "emergency", [COMMUNE]))
    original = first.json()["broadcast_id"]
    worse = bulletin("TW-BAO-9-U", "emergency", [COMMUNE, NEIGHBOUR], kind="update")
    worse["references"] = ["TW-BAO-9"]
    update = await post(stack, worse)
    assert update.status_code == 201, update.text
    replacement = update.json()["broadcast_id"]
    assert (await stack.broadcast(original))["status"] == "canceled"
    assert sorted((await stack.broadcast(replacement))["target_areas"]) == sorted(
        [COMMUNE, NEIGHBOUR]
    )
    cancel = bulletin("TW-BAO-9-C", "emergency", [COMMUNE], kind="cancel", texts=[])
    cancel["references"] = ["TW-BAO-9-U"]
    stopped = await post(stack, cancel)
    assert stopped.status_code == 201, stopped.text
    assert stopped.json()["reason"] == f"cancelled 1 broadcast(s): {replacement}"
    assert (await stack.broadcast(replacement))["status"] == "canceled"


async def test_bad_bulletins_are_refused_naming_the_field_and_nothing_airs(stack: Stack) -> None:
    await small_province(stack)
    good = bulletin("TW-X", "emergency", [COMMUNE])
    cases = {
        "class": {k: v for k, v in good.items() if k != "class"},
        "sent": {**good, "sent": "2026-11-24T08:00:00"},  # no zone
        "texts": {**good, "texts": []},
        "areas": {**good, "areas": []},
    }
    for field, body in cases.items():
        response = await post(stack, body)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["detail"][0]["field"] == field, response.text
    elsewhere = await post(stack, bulletin("TW-Y", "emergency", ["01001"]))  # Hà Nội
    assert (elsewhere.status_code, elsewhere.json()["outcome"]) == (200, "ignored")
    late = bulletin("TW-Z", "emergency", [COMMUNE])
    late["expires_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    expired = await post(stack, late)
    assert (expired.status_code, expired.json()["outcome"]) == (200, "ignored")
    assert (await stack.client.get("/api/v1/broadcasts")).json()["items"] == []

    await make_user(stack, "trung.uong", role="observer")
    observer = {"Authorization": f"Bearer {await signed_in(stack, 'trung.uong')}"}
    refused = await post(stack, good, **observer)
    assert refused.status_code == 403
