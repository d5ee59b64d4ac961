"""The library through the API: only approved bulletins air, emergencies go at once and
are reviewed afterwards, and every step is recorded with who and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.broadcast.helpers import EDITOR, upload
from tests.factories import small_province
from tests.support import Stack

OPERATOR = {"x-actor": "can.bo.xa", "x-role": "commune_operator", "x-area": "25195"}
DUTY = {"x-actor": "truc.ban", "x-role": "province_officer"}


async def post(stack: Stack, url: str, body: Any = None, headers: Any = None) -> Any:
    return await stack.client.post(url, json=body, headers=headers)


async def test_a_bulletin_airs_only_once_approved(stack: Stack) -> None:
    await small_province(stack)
    created = await post(
        stack,
        "/api/v1/bulletins",
        {"title": "Lịch thu gom rác", "topic": "môi trường", "text": "Thu gom rác lúc 6h"},
        OPERATOR,
    )
    assert created.status_code == 201, created.text
    bulletin = created.json()
    assert bulletin["status"] == "draft" and bulletin["spoken"] and bulletin["media_sha256"]
    assert bulletin["area_code"] == "25195" and bulletin["author"] == "can.bo.xa"
    bid = bulletin["id"]
    send = {"title": "Lịch thu gom rác", "areas": ["25195"], "bulletin_id": bid, "class": "normal"}

    refused = await post(stack, "/api/v1/broadcasts", send, OPERATOR)
    assert refused.status_code == 409 and "only approved" in refused.json()["error"]
    assert (await post(stack, f"/api/v1/bulletins/{bid}/submit", None, OPERATOR)).status_code == 200
    own = await post(stack, f"/api/v1/bulletins/{bid}/approve", None, OPERATOR)
    assert own.status_code == 403, "an operator is not the editorial board"
    edit = await stack.client.patch(
        f"/api/v1/bulletins/{bid}", json={"title": "x"}, headers=OPERATOR
    )
    assert edit.status_code == 409, "what is under review is frozen"
    no_reason = await post(stack, f"/api/v1/bulletins/{bid}/reject", {"note": ""}, EDITOR)
    assert no_reason.status_code == 422 and no_reason.json()["detail"]["field"] == "note"
    approved = await post(stack, f"/api/v1/bulletins/{bid}/approve", {"note": "ok"}, EDITOR)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"

    sent = await post(stack, "/api/v1/broadcasts", send, OPERATOR)
    assert sent.status_code == 201, sent.text
    assert sent.json()["bulletin_id"] == bid and sent.json()["sent_by"] == "can.bo.xa"
    assert sent.json()["media_sha256"] == bulletin["media_sha256"], "the approved audio airs"
    overridden = await post(
        stack, "/api/v1/broadcasts", {**send, "media_sha256": "0" * 64}, OPERATOR
    )
    assert overridden.status_code == 422 and overridden.json()["detail"]["field"] == "media_sha256"

    history = (await stack.client.get(f"/api/v1/bulletins/{bid}")).json()["history"]
    steps = [(h["action"], h["actor"], h["to_status"]) for h in history]
    assert steps == [
        ("create", "can.bo.xa", "draft"),
        ("submit", "can.bo.xa", "submitted"),
        ("approve", "bien.tap.vien", "approved"),
        ("broadcast", "can.bo.xa", "approved"),
    ]
    assert all(h["at"] for h in history)

    archived = await post(stack, f"/api/v1/bulletins/{bid}/archive", None, EDITOR)
    assert archived.json()["status"] == "archived"
    gone = await post(stack, "/api/v1/broadcasts", {**send, "class": "emergency"}, DUTY)
    assert gone.status_code == 409, "an archived bulletin does not air, even as an emergency"


async def test_validity_dates_are_enforced(stack: Stack, tone_mp3: Path) -> None:
    await small_province(stack)
    clip = await upload(stack, tone_mp3)
    now = datetime.now(UTC)
    windows = {
        "valid_until": {"valid_until": (now - timedelta(hours=1)).isoformat()},
        "valid_from": {"valid_from": (now + timedelta(hours=1)).isoformat()},
    }
    for field, window in windows.items():
        created = await post(
            stack, "/api/v1/bulletins", {"title": "t", "media_sha256": clip["sha256"], **window}
        )
        bid = created.json()["id"]
        await post(stack, f"/api/v1/bulletins/{bid}/submit")
        await post(stack, f"/api/v1/bulletins/{bid}/approve", None, EDITOR)
        send = {"title": "t", "areas": ["25195"], "bulletin_id": bid, "class": "normal"}
        response = await post(stack, "/api/v1/broadcasts", send)
        assert response.status_code == 409 and response.json()["detail"]["field"] == field


async def test_an_emergency_airs_at_once_and_waits_for_review(stack: Stack, tone_mp3: Path) -> None:
    await small_province(stack)
    clip = await upload(stack, tone_mp3)
    normal = await post(
        stack,
        "/api/v1/broadcasts",
        {"title": "x", "areas": ["25195"], "media_sha256": clip["sha256"], "class": "normal"},
    )
    assert normal.status_code == 409 and normal.json()["detail"]["field"] == "bulletin_id"

    sent = await post(
        stack,
        "/api/v1/broadcasts",
        {"title": "Cháy rừng", "areas": ["25195"], "media_sha256": clip["sha256"]},
        DUTY,
    )
    assert sent.status_code == 201
    queue = (await stack.client.get("/api/v1/bulletins", params={"status": "submitted"})).json()
    [item] = [b for b in queue["items"] if b["id"] == sent.json()["bulletin_id"]]
    assert item["aired_before_review"] is True
    assert (item["title"], item["author"], item["class"]) == ("Cháy rừng", "truc.ban", "emergency")
    reviewed = await post(stack, f"/api/v1/bulletins/{item['id']}/approve", None, EDITOR)
    assert reviewed.status_code == 200 and reviewed.json()["aired_before_review"]


async def test_minority_language_text_needs_a_recording(stack: Stack, tone_mp3: Path) -> None:
    await small_province(stack)
    text_only = await post(
        stack, "/api/v1/bulletins", {"title": "Thông báo", "language": "ede", "text": "Ih jing…"}
    )
    assert text_only.status_code == 422
    assert text_only.json()["detail"]["field"] == "media_sha256"
    clip = await upload(stack, tone_mp3)
    recorded = await post(
        stack,
        "/api/v1/bulletins",
        {
            "title": "Thông báo",
            "language": "ede",
            "text": "Ih jing…",
            "media_sha256": clip["sha256"],
        },
    )
    assert recorded.status_code == 201 and recorded.json()["language"] == "ede"
    listing = await stack.client.get("/api/v1/bulletins", params={"q": "Thông"})
    assert listing.json()["total"] == 1
