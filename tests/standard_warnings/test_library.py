"""The library of standard warnings (issue 24, docs/protocol.md 11.1): created or
replaced under an id, listed, deleted; kept by the duty officer and the administrator,
read by everyone; bad input refused naming the field; every change on record."""

from __future__ import annotations

from pathlib import Path

from devstack.synth import still_image
from standard_warnings.service import MAX_WARNINGS
from tests.broadcast.helpers import upload
from tests.factories import small_province
from tests.security.helpers import make_user, signed_in
from tests.support import Stack

URL = "/api/v1/warnings"
OFFICER = {"x-actor": "truc.ban", "x-role": "province_officer"}


async def test_a_warning_is_created_replaced_listed_and_deleted(
    stack: Stack, tone_mp3: Path, long_mp3: Path
) -> None:
    short, long = await upload(stack, tone_mp3), await upload(stack, long_mp3)
    created = await stack.client.put(
        f"{URL}/flood-evacuate",
        json={"title": "Lũ: sơ tán ngay", "media_sha256": short["sha256"]},
        headers=OFFICER,
    )
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["id"] == "flood-evacuate" and first["updated_by"] == "truc.ban"
    assert first["created_at"] == first["updated_at"]

    replaced = await stack.client.put(
        f"{URL}/flood-evacuate",
        json={"title": "Lũ khẩn cấp: sơ tán", "media_sha256": long["sha256"]},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["media_sha256"] == long["sha256"]
    assert replaced.json()["created_at"] == first["created_at"]
    assert replaced.json()["updated_by"] != "truc.ban"  # the administrator this time

    await stack.client.put(
        f"{URL}/storm-9", json={"title": "Bão cấp 9", "media_sha256": short["sha256"]}
    )
    listed = await stack.client.get(URL)
    assert [(w["id"], w["title"]) for w in listed.json()] == [
        ("flood-evacuate", "Lũ khẩn cấp: sơ tán"),
        ("storm-9", "Bão cấp 9"),
    ]

    deleted = await stack.client.delete(f"{URL}/storm-9", headers=OFFICER)
    assert deleted.status_code == 204, deleted.text
    assert [w["id"] for w in (await stack.client.get(URL)).json()] == ["flood-evacuate"]
    gone = await stack.client.delete(f"{URL}/storm-9")
    assert gone.status_code == 404 and gone.json()["detail"] == {"warning": "storm-9"}

    log = (await stack.client.get("/api/v1/audit?limit=50")).json()["items"]
    recorded = {(e["action"], e["target"].split(" ")[0], e["actor"]) for e in log}
    assert ("PUT /api/v1/warnings/{id}", f"{URL}/flood-evacuate", "truc.ban") in recorded
    assert ("DELETE /api/v1/warnings/{id}", f"{URL}/storm-9", "truc.ban") in recorded


async def test_bad_input_is_refused_naming_the_field(
    stack: Stack, tone_mp3: Path, tmp_path: Path
) -> None:
    clip = await upload(stack, tone_mp3)
    with still_image(tmp_path / "map.png").open("rb") as f:
        image = (
            await stack.client.post("/api/v1/media/images", files={"file": ("map.png", f)})
        ).json()
    cases = [
        ("flood", {"title": "Lũ", "media_sha256": "0" * 64}, "media_sha256"),  # not uploaded
        ("flood", {"title": "Lũ", "media_sha256": image["sha256"]}, "media_sha256"),  # no sound
        ("flood", {"title": "Lũ", "media_sha256": "abc"}, "media_sha256"),
        ("flood", {"title": "", "media_sha256": clip["sha256"]}, "title"),
        ("lũ lụt", {"title": "Lũ", "media_sha256": clip["sha256"]}, "path.id"),
        ("x" * 65, {"title": "Lũ", "media_sha256": clip["sha256"]}, "path.id"),
    ]
    for warning_id, body, field in cases:
        response = await stack.client.put(f"{URL}/{warning_id}", json=body)
        assert response.status_code == 422, (body, response.text)
        detail = response.json()["detail"]
        named = detail["field"] if isinstance(detail, dict) else detail[0]["field"]
        assert named == field, (body, response.text)
    assert (await stack.client.get(URL)).json() == []


async def test_only_the_duty_officer_and_the_administrator_change_the_library(
    stack: Stack, tone_mp3: Path
) -> None:
    await small_province(stack)
    clip = await upload(stack, tone_mp3)
    scoped = {"commune_operator": "25216", "district_operator": "689", "technician": "689"}
    roles = ["province_officer", "admin", "editor", "observer", *scoped]
    tokens = {}
    for role in roles:
        await make_user(stack, f"u.{role}", role=role, area=scoped.get(role))
        tokens[role] = {"Authorization": f"Bearer {await signed_in(stack, f'u.{role}')}"}
    body = {"title": "Cháy rừng", "media_sha256": clip["sha256"]}
    for role in roles:
        put = await stack.client.put(f"{URL}/forest-fire", json=body, headers=tokens[role])
        allowed = role in ("province_officer", "admin")
        assert put.status_code == (200 if role == "admin" else 201) if allowed else 403, (
            role,
            put.text,
        )
        if not allowed:
            refused = put.json()["detail"]
            assert refused["missing"] == "role" and refused["needs"] == "warning.manage", refused
            deleted = await stack.client.delete(f"{URL}/forest-fire", headers=tokens[role])
            assert deleted.status_code == 403, (role, deleted.text)
        # Everyone reads it: a commune's operator sees what the province's clusters hold.
        listed = await stack.client.get(URL, headers=tokens[role])
        assert listed.status_code == 200 and [w["id"] for w in listed.json()] == ["forest-fire"]


async def test_the_library_stays_short(stack: Stack, tone_mp3: Path) -> None:
    """Every cluster keeps every clip and every document lists them all."""
    clip = await upload(stack, tone_mp3)
    body = {"title": "Cảnh báo", "media_sha256": clip["sha256"]}
    for n in range(MAX_WARNINGS):
        assert (await stack.client.put(f"{URL}/w-{n}", json=body)).status_code == 201
    full = await stack.client.put(f"{URL}/one-more", json=body)
    assert full.status_code == 409 and full.json()["detail"]["field"] == "id", full.text
    replaced = await stack.client.put(f"{URL}/w-0", json={**body, "title": "Bão"})
    assert replaced.status_code == 200, "replacing one is always possible"
