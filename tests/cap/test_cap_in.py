"""CAP 1.2 in: alerts from a national agency become broadcasts (or inbox items) on the
right clusters, in the right class, in every language a voice here speaks; updates
replace, cancels stop, exercises are drills everywhere; bad messages are refused with
the reason and kept for review."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import httpx

from simulator.fleet import Fleet
from tests.cap.helpers import SENT, InfoSpec, alert, key_of, xml
from tests.factories import small_province
from tests.support import Stack, counts

COMMUNE, DISTRICT = "25216", "689"
NEIGHBOUR = "25195"  # the other commune of the district
CAP_HEADERS = {"content-type": "application/cap+xml"}


async def post_cap(stack: Stack, body: bytes) -> httpx.Response:
    return await stack.client.post("/api/v1/cap", content=body, headers=CAP_HEADERS)


async def test_an_emergency_by_geocode_airs_at_once_in_vietnamese_and_english(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await small_province(stack)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    english = InfoSpec(
        language="en-US",
        headline="Flash flood on the Be river",
        description="The Be river is rising fast, above alarm level three.",
        instruction="Move to higher ground now.",
        geocodes=[COMMUNE],
    )
    response = await post_cap(
        stack, xml(alert("LQ-2026-001", InfoSpec(geocodes=[COMMUNE]), english))
    )
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["outcome"] == "accepted" and receipt["sender"] == "canhbao@nchmf.gov.vn"
    done = await stack.wait_broadcast(
        receipt["broadcast_id"], lambda b: counts(b, "played") == len(specs)
    )
    assert (done["class"], done["level"], done["drill"]) == ("emergency", "central", False)
    assert done["target_areas"] == [COMMUNE] and done["title"] == "Lũ quét trên sông Bé"
    assert "Mực nước sông Bé" in done["text"] and "Move to higher ground now." in done["text"]
    media = (await stack.client.get(f"/api/v1/media/{done['media_sha256']}")).json()
    assert media["original_name"] == "tts:espeak-ng:vi-VN+en"  # both, Vietnamese first
    assert fleet.count(lambda d: d.play_counts[done["id"]] == 1) == len(specs)
    # From above the province: approved by its issuer, and recorded in the inbox as aired.
    bulletin = (await stack.client.get(f"/api/v1/bulletins/{done['bulletin_id']}")).json()
    assert bulletin["status"] == "approved" and bulletin["topic"] == "weather"
    assert any("approved by its issuer" in (e["note"] or "") for e in bulletin["history"])
    inbox = (await stack.client.get(f"/api/v1/inbox?area={COMMUNE}")).json()["items"]
    assert [(i["status"], i["sender_level"], i["class"]) for i in inbox] == [
        ("aired", "central", "emergency")
    ]


async def test_polygons_and_circles_reach_the_clusters_inside_them(stack: Stack) -> None:
    await small_province(stack)
    clusters = (await stack.client.get(f"/api/v1/clusters?area={COMMUNE}&limit=500")).json()
    a, b = sorted(clusters["items"], key=lambda c: c["code"])[:2]
    d = 0.0005  # about 55 m: a square around cluster a alone
    square = [
        (a["latitude"] - d, a["longitude"] - d),
        (a["latitude"] - d, a["longitude"] + d),
        (a["latitude"] + d, a["longitude"] + d),
        (a["latitude"] + d, a["longitude"] - d),
        (a["latitude"] - d, a["longitude"] - d),
    ]
    spec = InfoSpec(
        urgency="Expected",
        severity="Moderate",
        certainty="Likely",
        polygons=[square],
        circles=[(b["latitude"], b["longitude"], 0.05)],
    )
    response = await post_cap(stack, xml(alert("MUA-LON-7", spec)))
    assert response.status_code == 201, response.text
    sent = await stack.broadcast(response.json()["broadcast_id"])
    assert sent["class"] == "priority"  # expected, moderate, likely
    assert sorted(sent["target_clusters"]) == sorted([a["code"], b["code"]])
    assert sent["total"] == 2


async def test_a_normal_alert_waits_in_the_inboxes_of_the_communes(stack: Stack) -> None:
    await small_province(stack)
    spec = InfoSpec(urgency="Future", severity="Minor", certainty="Possible", geocodes=[DISTRICT])
    response = await post_cap(stack, xml(alert("KHUYEN-CAO-3", spec)))
    assert response.status_code == 201, response.text
    assert response.json()["broadcast_id"] is None  # the commune decides
    communes = (await stack.client.get(f"/api/v1/areas?parent={DISTRICT}&level=commune")).json()
    inbox = (await stack.client.get(f"/api/v1/inbox?area={DISTRICT}&limit=500")).json()["items"]
    assert len(inbox) == communes["total"] > 1
    assert {(i["status"], i["class"], i["sender_level"]) for i in inbox} == {
        ("pending", "normal", "central")
    }


async def test_an_update_replaces_the_broadcast_and_a_cancel_stops_it(stack: Stack) -> None:
    await small_province(stack)
    first = await post_cap(stack, xml(alert("BAO-9", InfoSpec(geocodes=[COMMUNE]))))
    assert first.status_code == 201, first.text
    original = first.json()["broadcast_id"]
    worse = InfoSpec(headline="Bão số 9 mạnh thêm", geocodes=[COMMUNE, NEIGHBOUR])
    update = await post_cap(
        stack,
        xml(
            alert(
                "BAO-9-U1",
                worse,
                msg_type="Update",
                references=[key_of("BAO-9")],
                sent=SENT + datetime.timedelta(minutes=10),
            )
        ),
    )
    assert update.status_code == 201, update.text
    replacement = update.json()["broadcast_id"]
    assert f"replaces {original}" in update.json()["reason"]
    assert (await stack.broadcast(original))["status"] == "canceled"
    updated = await stack.broadcast(replacement)
    assert updated["status"] == "active" and updated["title"] == "Bão số 9 mạnh thêm"
    assert sorted(updated["target_areas"]) == sorted([COMMUNE, NEIGHBOUR])

    sent_update = SENT + datetime.timedelta(minutes=10)
    cancel = await post_cap(
        stack,
        xml(
            alert(
                "BAO-9-C",
                msg_type="Cancel",
                references=[key_of("BAO-9-U1", sent_update)],
                sent=SENT + datetime.timedelta(minutes=20),
            )
        ),
    )
    assert cancel.status_code == 201, cancel.text
    assert cancel.json()["reason"] == f"cancelled 1 broadcast(s): {replacement}"
    assert (await stack.broadcast(replacement))["status"] == "canceled"
    again = await post_cap(
        stack,
        xml(
            alert(
                "BAO-9-C2",
                msg_type="Cancel",
                references=[key_of("BAO-9-U1", sent_update)],
            )
        ),
    )
    assert (again.status_code, again.json()["outcome"]) == (200, "ignored")


async def test_an_exercise_is_a_drill_on_the_record_the_screens_and_in_the_voice(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await small_province(stack, eboards=True)).of(COMMUNE)
    eboards = [s.code for s in specs if s.kind == "eboard"]
    assert eboards, "the commune has an e-board"
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    response = await post_cap(
        stack, xml(alert("DIEN-TAP-1", InfoSpec(geocodes=[COMMUNE]), status="Exercise"))
    )
    assert response.status_code == 201, response.text
    assert response.json()["drill"] is True
    done = await stack.wait_broadcast(
        response.json()["broadcast_id"], lambda b: counts(b, "played") == len(specs)
    )
    assert done["drill"] is True
    listed = (await stack.client.get("/api/v1/broadcasts")).json()["items"]
    assert [b["drill"] for b in listed] == [True]
    for code in eboards:
        [shown] = fleet.devices[code].shown
        assert shown.title == "DIỄN TẬP / EXERCISE: Lũ quét trên sông Bé"
    # The spoken clip starts with the drill sentence: longer than the same alert for real.
    real = await post_cap(stack, xml(alert("THAT-1", InfoSpec(geocodes=[COMMUNE]))))
    drill_clip = await _media(stack, done["media_sha256"])
    real_clip = await _media(
        stack, (await stack.broadcast(real.json()["broadcast_id"]))["media_sha256"]
    )
    assert drill_clip["duration_ms"] > real_clip["duration_ms"] + 1000


async def _media(stack: Stack, sha256: str) -> dict[str, Any]:
    data: dict[str, Any] = (await stack.client.get(f"/api/v1/media/{sha256}")).json()
    return data


async def test_draft_foreign_expired_and_repeated_alerts_are_kept_but_not_aired(
    stack: Stack,
) -> None:
    await small_province(stack)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    cases = {
        "draft": (alert("D-1", InfoSpec(geocodes=[COMMUNE]), status="Draft"), "status Draft"),
        "elsewhere": (alert("X-1", InfoSpec(geocodes=["79"])), "no area of this province"),
        "expired": (alert("E-1", InfoSpec(geocodes=[COMMUNE], expires=past)), "expired at"),
    }
    for name, (message, says) in cases.items():
        response = await post_cap(stack, xml(message))
        assert (response.status_code, response.json()["outcome"]) == (200, "ignored"), name
        assert says in response.json()["reason"], (name, response.json()["reason"])
    first = await post_cap(stack, xml(alert("R-1", InfoSpec(geocodes=[COMMUNE]))))
    repeat = await post_cap(stack, xml(alert("R-1", InfoSpec(geocodes=[COMMUNE]))))
    assert repeat.status_code == 200 and repeat.json()["duplicate"] is True
    assert repeat.json()["id"] == first.json()["id"]
    broadcasts = (await stack.client.get("/api/v1/broadcasts")).json()
    assert broadcasts["total"] == 1  # only R-1, once
    stored = (await stack.client.get("/api/v1/cap?limit=100")).json()
    assert stored["total"] == 4  # three ignored and R-1; the copy is not stored again


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol2;</identifier></alert>"""


async def test_malformed_and_invalid_messages_are_refused_with_the_reason_and_kept(
    stack: Stack,
) -> None:
    await small_province(stack)
    good = xml(alert("OK-1", InfoSpec(geocodes=[COMMUNE])))
    cases = [
        (b"", "empty body"),
        (b"<alert><identifier>no namespace", "not well-formed XML"),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"/>', "expected alert"),
        (good.replace(b"<status>Actual</status>", b"<status>Real</status>"), "not valid CAP 1.2"),
        (good.replace(b"<sender>", b"<sender2>").replace(b"</sender>", b"</sender2>"), "CAP 1.2"),
        (
            xml(alert("BAD-POLY", InfoSpec(raw_polygon="north of the river"))),
            "an area is not readable",
        ),
        (BILLION_LAUGHS, "document type declaration is not allowed"),
    ]
    for body, says in cases:
        response = await post_cap(stack, body)
        assert response.status_code == 422, (says, response.text)
        assert response.json()["detail"]["field"] == "body"
        assert says in response.json()["error"], (says, response.json()["error"])
    review = (await stack.client.get("/api/v1/cap?outcome=rejected&limit=100")).json()
    assert review["total"] == len(cases)
    kept = [(await stack.client.get(f"/api/v1/cap/{m['id']}")).json() for m in review["items"]]
    assert sorted(k["raw"] for k in kept) == sorted(body.decode() for body, _ in cases)
    # Refusals cost nothing: a good alert right after is aired.
    accepted = await post_cap(stack, good)
    assert accepted.status_code == 201 and accepted.json()["broadcast_id"] is not None
