"""The attack run's findings (issue 18), each as it was reproduced against the system, now
refused: real accounts, a running stack, a simulated fleet that must hear nothing."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from core.clock import ManualClock
from core.settings import Settings
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.security.helpers import PASSWORD, make_user, signed_in
from tests.support import Stack, counts
from wire.signing import SigningKey

COMMUNE, DISTRICT = "25216", "689"
KEY = SigningKey.generate().seed_text


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
        "field": "class",
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


@pytest.mark.parametrize(
    "weak",
    [
        "",
        "x",
        "changeme",
        "change-me",
        "secret",
        "password",
        "Password",
        "s" * 64,
        "changeme" * 6,
        "passwordpassword-2026-passwordpassword-2026",
        "abcdefghijklmnopqrstuvwxyzABCDEF",
    ],
)
def test_4_production_refuses_a_weak_secret(weak: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(environment="production", secret_key=weak, signing_key=KEY)
    message = str(refused.value)
    assert "BROADCAST_SECRET_KEY" in message and "broadcast keys generate" in message


def test_4_production_needs_its_own_signing_key() -> None:
    strong = secrets.token_urlsafe(32)
    with pytest.raises(ValidationError, match="BROADCAST_SIGNING_KEY must be set"):
        Settings(environment="production", secret_key=strong)
    settings = Settings(environment="production", secret_key=strong, signing_key=KEY)
    assert settings.signer.seed_text == KEY
    # Outside production the demo still runs without either.
    assert Settings(environment="development").signer is not None


async def test_5_an_attacker_cannot_lock_the_duty_officer_out(
    stack_factory: Callable[..., Awaitable[Stack]],
) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    stack = await stack_factory(clock=clock)
    await make_user(stack, "truc.ban", role="province_officer")
    base = stack.settings.public_base_url
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.7")  # somewhere else
    async with httpx.AsyncClient(base_url=base, transport=transport) as attacker:

        async def hammer(name: str, password: str = "đoán bừa một mật khẩu") -> int:
            response = await attacker.post(
                "/api/v1/auth/login", json={"username": name, "password": password}
            )
            return response.status_code

        for _ in range(stack.settings.login_max_failures):
            assert await hammer("truc.ban") == 401
            clock.set(clock.now() + timedelta(seconds=30))  # past each growing wait
        # The attacker's address is held off the name, even with the right password...
        assert await hammer("truc.ban", PASSWORD) == 429
        # ...and the duty officer, from the duty room, signs in at once.
        officer = await signed_in(stack, "truc.ban")
        me = await stack.client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {officer}"}
        )
        assert me.json()["name"] == "truc.ban"

        # Administrators are told: an alarm on record (and in /metrics).
        alarms = await stack.client.get("/api/v1/audit?outcome=alarm")
        [alarm] = alarms.json()["items"]
        assert (alarm["target"], alarm["address"]) == ("truc.ban", "127.0.0.7")
        metrics = (await stack.client.get("/metrics")).text
        assert "broadcast_sign_in_alarms_total 1.0" in metrics

        # Names sprayed from one address: refused before any password is hashed.
        statuses = [await hammer(f"ten.{n}") for n in range(30)]
        per_minute = stack.settings.login_per_address_per_minute
        assert statuses[: per_minute - 1].count(401) == per_minute - 1
        assert statuses[-1] == 429


async def test_6_media_is_read_only_where_it_is_used(stack: Stack, tone_mp3: Path) -> None:
    await small_province(stack)
    heads = {}
    for name, area in (("xa.a", COMMUNE), ("xa.b", "25195"), ("tinh", None)):
        role = "province_officer" if area is None else "commune_operator"
        await make_user(stack, name, role=role, area=area)
        heads[name] = {"Authorization": f"Bearer {await signed_in(stack, name)}"}
    with tone_mp3.open("rb") as f:
        uploaded = await stack.client.post(
            "/api/v1/media", files={"file": ("ghi-am.mp3", f)}, headers=heads["xa.a"]
        )
    sha = uploaded.json()["sha256"]
    draft = await stack.client.post(
        "/api/v1/bulletins",
        json={"title": "Ghi âm của xã A", "media_sha256": sha},
        headers=heads["xa.a"],
    )
    assert draft.status_code == 201, draft.text

    async def reads(who: str) -> tuple[int, int]:
        meta = await stack.client.get(f"/api/v1/media/{sha}", headers=heads[who])
        data = await stack.client.get(f"/api/v1/media/{sha}/file", headers=heads[who])
        return meta.status_code, data.status_code

    assert await reads("xa.a") == (200, 200)
    assert await reads("tinh") == (200, 200)  # provincial staff read everything
    assert await reads("xa.b") == (403, 403)  # another commune's recording
    refused = await stack.client.get(f"/api/v1/media/{sha}/file", headers=heads["xa.b"])
    assert refused.json()["detail"] == {"missing": "area", "media": sha, "yours": "25195"}
    # Once the province airs it in commune B, commune B may listen to what it heard.
    aired = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Phát lại", "areas": ["25195"], "media_sha256": sha},
        headers=heads["tinh"],
    )
    assert aired.status_code == 201, aired.text
    assert await reads("xa.b") == (200, 200)


async def test_the_console_pages_go_through_the_same_guard(
    stack: Stack, province: Province
) -> None:
    """The live page showed any broadcast by id; console 403s were not on record."""
    officer = province.headers["province_officer"]
    elsewhere = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Cháy rừng", "areas": ["25231"], "media_sha256": province.media},
        headers=officer,
    )
    assert elsewhere.status_code == 201, elsewhere.text
    token = province.headers["commune_operator"]["Authorization"].split()[1]
    cookie = {"Cookie": f"bc_session={token}"}
    other = await stack.client.get(f"/console/broadcasts/{elsewhere.json()['id']}", headers=cookie)
    assert other.status_code == 403 and "<html" in other.text
    assert "Cháy rừng" not in other.text
    for url in ("/console/emergency", "/console/health?area=25231", "/console/clusters/25231-01"):
        refused = await stack.client.get(url, headers=cookie)
        assert refused.status_code == 403, url
    mine = await stack.client.get("/console/health", headers=cookie)
    assert mine.status_code == 200
    on_record = await stack.client.get("/api/v1/audit?outcome=denied")
    actions = {(e["actor"], e["action"]) for e in on_record.json()["items"]}
    assert ("u.commune_operator", "GET /console/broadcasts/{broadcast_id}") in actions
    assert ("u.commune_operator", "GET /console/emergency") in actions
