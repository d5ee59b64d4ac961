"""The central source information system's API, read by the national level's observer:
every figure checked against what really happened; nothing writable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.fleet import Fleet
from tests.broadcast.helpers import (
    a_commune_hears_an_emergency,
    approved_bulletin,
    send,
    upload,
)
from tests.factories import small_province
from tests.security.helpers import make_user, signed_in
from tests.support import Stack, counts

COMMUNE, DISTRICT, OTHER_DISTRICT = "25216", "689", "695"


async def _observer(stack: Stack) -> dict[str, str]:
    await make_user(stack, "trung.uong", role="observer")
    return {"Authorization": f"Bearer {await signed_in(stack, 'trung.uong')}"}


async def _get(stack: Stack, headers: dict[str, str], path: str, **params: Any) -> Any:
    response = await stack.client.get(f"/api/v1/central/{path}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_observer_reads_stations_and_the_broadcast_log_as_they_are(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    heard = await a_commune_hears_an_emergency(stack, fleet_factory, tone_mp3, COMMUNE)
    everyone, specs, media, here = heard.everyone, heard.specs, heard.media, heard.sent
    elsewhere = await send(stack, areas=[OTHER_DISTRICT], media_sha256=media["sha256"], drill=True)
    observer = await _observer(stack)

    communes = await _get(stack, observer, "areas", area=DISTRICT, level="commune")
    assert communes["total"] > 1 and {a["parent_code"] for a in communes["items"]} == {DISTRICT}
    stations = await _get(stack, observer, "stations", area=COMMUNE, limit=1000)
    assert stations["total"] == len(specs)
    assert all(s["latitude"] and s["longitude"] for s in stations["items"])
    online = await _get(stack, observer, "stations", online="true")
    assert online["total"] == len(specs)  # only this commune's fleet is running
    boards = await _get(stack, observer, "eboards")
    assert boards["total"] == len([s for s in everyone if s.kind == "eboard"])
    assert {b["kind"] for b in boards["items"]} == {"eboard"}
    first = await _get(stack, observer, "stations", limit=5, offset=0)
    second = await _get(stack, observer, "stations", limit=5, offset=5)
    assert first["total"] == len(everyone) and len(second["items"]) == 5
    assert not {s["code"] for s in first["items"]} & {s["code"] for s in second["items"]}

    log = await _get(stack, observer, "broadcasts", area=COMMUNE)
    [entry] = log["items"]
    assert entry["id"] == here["id"] and entry["drill"] is False
    n = len(specs)
    assert (entry["clusters"], entry["confirmed"], entry["played"], entry["failed"]) == (n, n, n, 0)
    times = entry["times"]
    assert 0 <= times["to_50"] <= times["to_90"] <= times["to_100"] < 60
    everything = await _get(stack, observer, "broadcasts")
    assert [b["id"] for b in everything["items"]] == [elsewhere["id"], here["id"]]
    assert everything["items"][0]["drill"] is True
    assert everything["items"][0]["times"]["to_50"] is None  # nobody there is online
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert (await _get(stack, observer, "broadcasts", since=later))["total"] == 0
    emergencies = await _get(stack, observer, "broadcasts", **{"class": "emergency"})
    assert emergencies["total"] == 2
    naive = await stack.client.get(
        "/api/v1/central/broadcasts", params={"since": "2026-11-01T00:00:00"}, headers=observer
    )
    assert naive.status_code == 422 and naive.json()["detail"]["field"] == "since"


async def test_statistics_match_the_records(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = (await small_province(stack)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    media = await upload(stack, tone_mp3)
    for topic in ("weather", "weather", "health"):
        await approved_bulletin(
            stack, title=f"Tin {topic}", topic=topic, media_sha256=media["sha256"]
        )
    sent = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    done = await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(specs))
    observer = await _observer(stack)
    stats = await _get(stack, observer, "statistics", area=COMMUNE)
    assert stats["broadcasts"] == 1 and stats["by_class"] == {"emergency": 1}
    assert stats["plays"] == len(specs) == done["counts"]["played"]
    clip_s = (await stack.client.get(f"/api/v1/media/{media['sha256']}")).json()["duration_ms"]
    assert abs(stats["airtime_s"] - len(specs) * clip_s / 1000) <= 1
    assert stats["emergencies_timed"] == 1
    assert 0 <= stats["emergency_median_to_50_s"] <= stats["emergency_median_to_100_s"]
    assert stats["clusters"] == len(specs) and stats["working_share"] > 0
    province = await _get(stack, observer, "statistics")
    # Bulletins are the province's (written by the administrator): counted there.
    assert province["bulletins_by_topic"]["weather"] == 2
    assert province["bulletins_by_topic"]["health"] == 1


async def test_the_observer_cannot_change_anything(stack: Stack, tone_mp3: Path) -> None:
    await small_province(stack)
    observer = await _observer(stack)
    media = await upload(stack, tone_mp3)
    attempts = [
        (
            "POST",
            "/api/v1/broadcasts",
            {"title": "x", "areas": [COMMUNE], "media_sha256": media["sha256"]},
        ),
        ("POST", "/api/v1/cap", None),
        ("POST", "/api/v1/bulletins", {"title": "x", "text": "y"}),
        (
            "POST",
            "/api/v1/schedules/check",
            {
                "title": "x",
                "bulletin_id": "b",
                "starts_local": "2026-12-01T06:30:00",
                "areas": [COMMUNE],
            },
        ),
    ]
    for method, path, body in attempts:
        response = await stack.client.request(method, path, json=body, headers=observer)
        assert response.status_code == 403, (path, response.text)
