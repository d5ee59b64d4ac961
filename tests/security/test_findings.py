"""The attack run's findings (issue 18), each as it was reproduced against the system, now
refused: real accounts, a running stack, a simulated fleet that must hear nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.security.helpers import make_user, signed_in
from tests.support import Stack, counts

COMMUNE, DISTRICT = "25216", "689"


@dataclass
class Province:
    fleet: Fleet
    media: str
    bulletin: str
    headers: dict[str, dict[str, str]]  # role -> Authorization header


@pytest.fixture
async def province(stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path) -> Province:
    small = await small_province(stack)
    fleet = fleet_factory(small.online(), time_compression=20)
    await fleet.start()
    media = (await upload(stack, tone_mp3))["sha256"]
    bulletin = (await approved_bulletin(stack, title="Tiêm phòng", media_sha256=media))["id"]
    headers = {}
    for role, area in (
        ("district_operator", DISTRICT),
        ("commune_operator", COMMUNE),
        ("province_officer", None),
    ):
        await make_user(stack, f"u.{role}", role=role, area=area)
        headers[role] = {"Authorization": f"Bearer {await signed_in(stack, f'u.{role}')}"}
    return Province(fleet, media, bulletin, headers)


def _heard(fleet: Fleet) -> set[str]:
    return {b for d in fleet.devices.values() for b in d.commanded}


async def test_1_a_district_operator_cannot_air_an_emergency_through_distribute(
    stack: Stack, province: Province
) -> None:
    district = province.headers["district_operator"]
    draft = await stack.client.post(
        "/api/v1/bulletins",
        json={"title": "Vỡ đê", "text": "Sơ tán ngay", "media_sha256": province.media},
        headers=district,
    )
    assert draft.status_code == 201, draft.text
    sent = await stack.client.post(
        f"/api/v1/bulletins/{draft.json()['id']}/distribute",
        json={"areas": [DISTRICT], "class": "emergency"},
        headers=district,
    )
    assert sent.status_code == 403, sent.text
    assert sent.json()["detail"] == {
        "missing": "role",
        "role": "district_operator",
        "needs": "broadcast.emergency",
    }
    direct = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Vỡ đê", "areas": [DISTRICT], "media_sha256": province.media},
        headers=district,
    )
    assert direct.status_code == 403  # the same answer by either route
    listed = await stack.client.get("/api/v1/broadcasts")
    assert listed.json()["total"] == 0
    assert _heard(province.fleet) == set()


async def test_2_a_commune_cannot_stop_the_provinces_emergency_or_schedule(
    stack: Stack, province: Province
) -> None:
    officer, commune = province.headers["province_officer"], province.headers["commune_operator"]
    sent = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Lũ quét", "areas": [COMMUNE], "media_sha256": province.media},
        headers=officer,
    )
    assert sent.status_code == 201, sent.text
    emergency = sent.json()["id"]
    stop = await stack.client.post(f"/api/v1/broadcasts/{emergency}/cancel", headers=commune)
    assert stop.status_code == 403, stop.text
    assert stop.json()["detail"]["missing"] == "role"
    played = await stack.wait_broadcast(emergency, lambda b: counts(b, "played") == 1)
    assert played["status"] == "active" and played["canceled_at"] is None
    assert not any(emergency in d.cancels for d in province.fleet.devices.values())

    starts = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    saved = await stack.client.post(
        "/api/v1/schedules",
        json={
            "title": "Tin tỉnh",
            "bulletin_id": province.bulletin,
            "starts_local": starts.isoformat(),
            "rule": "FREQ=DAILY",
            "areas": [COMMUNE],
        },
        headers=officer,
    )
    assert saved.status_code == 201 and saved.json()["level"] == "province", saved.text
    url = f"/api/v1/schedules/{saved.json()['id']}"
    for change in ({"status": "ended"}, {"ends_at": starts.isoformat() + "Z"}):
        edited = await stack.client.patch(url, json=change, headers=commune)
        assert edited.status_code == 403, edited.text
        assert edited.json()["detail"] == {
            "missing": "level",
            "level": "province",
            "yours": "commune",
        }
    still = (await stack.client.get(url)).json()
    assert (still["status"], still["ends_at"], still["version"]) == ("active", None, 1)
    # The officer stops it at once.
    stopped = await stack.client.post(f"/api/v1/broadcasts/{emergency}/cancel", headers=officer)
    assert stopped.status_code in (200, 409), stopped.text  # 409 if it has already played


async def test_3_the_sender_level_is_the_servers_word(stack: Stack, province: Province) -> None:
    commune = province.headers["commune_operator"]
    body: dict[str, Any] = {
        "title": "Họp dân",
        "class": "priority",
        "areas": [COMMUNE],
        "bulletin_id": province.bulletin,
    }
    mine = await stack.client.post("/api/v1/broadcasts", json=body, headers=commune)
    assert mine.status_code == 201 and mine.json()["level"] == "commune", mine.text
    for level in ("district", "province", "central"):
        asked = await stack.client.post(
            "/api/v1/broadcasts", json={**body, "level": level}, headers=commune
        )
        assert asked.status_code == 403, asked.text
        detail = asked.json()["detail"]
        assert (detail["missing"], detail["field"], detail["level"]) == ("level", "level", level)
    starts = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    schedule = {
        "title": "Tin xã",
        "bulletin_id": province.bulletin,
        "starts_local": starts.isoformat(),
        "areas": [COMMUNE],
    }
    saved = await stack.client.post("/api/v1/schedules", json=schedule, headers=commune)
    assert saved.status_code == 201 and saved.json()["level"] == "commune", saved.text
    higher = await stack.client.post(
        "/api/v1/schedules", json={**schedule, "level": "province"}, headers=commune
    )
    assert higher.status_code == 403 and higher.json()["detail"]["field"] == "level"
    # What the clusters were told: the commune's level, signed.
    heard = await stack.wait_broadcast(mine.json()["id"], lambda b: counts(b, "played") == 1)
    assert heard["level"] == "commune"
