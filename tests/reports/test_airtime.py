"""Broadcasts and airtime by area, checked against what the simulated clusters played."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from simulator.fleet import Fleet
from tests.broadcast.helpers import send, upload
from tests.factories import small_province
from tests.security.helpers import make_user, signed_in
from tests.support import Stack, counts

COMMUNE = "25216"


async def test_airtime_by_area_is_what_the_clusters_played(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = (await small_province(stack, clusters_per_commune=3)).speakers(COMMUNE)
    chosen = specs[:3]  # of four: one of the commune's clusters plays nothing
    fleet = fleet_factory(chosen, time_compression=10)
    await fleet.start()
    media = await upload(stack, tone_mp3)
    sent = await send(
        stack, clusters=[s.code for s in chosen], media_sha256=media["sha256"], repeat=2
    )
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == 3, what="played")
    played = fleet.count(lambda d: d.play_counts[sent["id"]] == 1)
    assert played == 3

    district = chosen[0].areas[1]
    report = (await stack.client.get("/api/v1/reports/airtime?area=70")).json()
    rows = {r["area_code"]: r for r in report}
    assert report[0]["area_code"] == "70"
    expected_s = round(played * 2 * media["duration_ms"] / 1000)
    for code in ("70", district):
        assert rows[code]["broadcasts"] == 1 and rows[code]["emergencies"] == 1
        assert rows[code]["plays"] == played and rows[code]["airtime_s"] == expected_s
    others = [r for c, r in rows.items() if c not in ("70", district)]
    assert others and all(r["broadcasts"] == 0 and r["airtime_s"] == 0 for r in others)
    health = {h["area_code"]: h for h in (await stack.client.get("/api/v1/health?area=70")).json()}
    for code, row in rows.items():
        h = health[code]
        assert row["clusters"] == h["total"]
        assert row["working_share"] == round(1 - h["not_working"] / h["total"], 4)

    exported = await stack.client.get("/api/v1/reports/airtime.csv?area=70")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert {(r["area_code"], int(r["airtime_s"])) for r in lines} == {
        (r["area_code"], r["airtime_s"]) for r in report
    }

    before = await stack.client.get(
        "/api/v1/reports/airtime",
        params={"area": "70", "until": sent["created_at"]},
    )
    assert before.json()[0]["broadcasts"] == 0  # the period is respected
    bad = await stack.client.get(
        "/api/v1/reports/airtime",
        params={"area": "70", "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )
    assert bad.status_code == 422 and bad.json()["detail"] == {"field": "since"}

    await make_user(stack, "xa.vien", role="commune_operator", area=COMMUNE)
    operator = {"Authorization": f"Bearer {await signed_in(stack, 'xa.vien')}"}
    assert (
        await stack.client.get("/api/v1/reports/airtime?area=70", headers=operator)
    ).status_code == 403
    mine = await stack.client.get(f"/api/v1/reports/airtime?area={COMMUNE}", headers=operator)
    assert mine.status_code == 200 and mine.json()[0]["plays"] == played
