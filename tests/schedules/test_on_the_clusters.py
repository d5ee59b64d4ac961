"""Schedules held on the clusters: pushed retained and versioned, confirmed by each
cluster, and played from storage by a cluster whose link is down at the slot."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from broadcast.models import Delivery
from core.database import session_scope
from devices.models import Cluster
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, send, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually

VN = ZoneInfo("Asia/Ho_Chi_Minh")
COMMUNE = "25195"


def local(instant: datetime) -> str:
    return instant.astimezone(VN).replace(tzinfo=None).isoformat(timespec="seconds")


async def out_of_date(stack: Stack) -> list[dict[str, Any]]:
    response = await stack.client.get("/api/v1/schedules/out-of-date", params={"area": COMMUNE})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


async def schedule_soon(
    stack: Stack, fleet: Fleet, clip: dict[str, Any], *, in_s: float
) -> tuple[str, datetime]:
    """A one-off play of an approved bulletin for the commune, `in_s` seconds from now
    (real time: the clusters play stored items by their own clocks), once every cluster
    holds it. The broker may first hand a new device an older retained document of
    another test's: wait for this schedule's item, not for a version number."""
    bulletin = await approved_bulletin(stack, title="Thông báo", media_sha256=clip["sha256"])
    slot = (datetime.now(UTC) + timedelta(seconds=in_s)).replace(microsecond=0)
    created = await stack.client.post(
        "/api/v1/schedules",
        json={
            "title": "Thông báo tiêm phòng",
            "bulletin_id": bulletin["id"],
            "starts_local": local(slot),
            "areas": [COMMUNE],
        },
    )
    assert created.status_code == 201, created.text
    schedule_id: str = created.json()["id"]

    async def held() -> set[tuple[str, ...]]:
        return {tuple(d.schedule.items) for d in fleet.devices.values()}

    def only_ours(h: set[tuple[str, ...]]) -> bool:
        return all(len(items) == 1 and items[0].startswith(f"{schedule_id}@") for items in h)

    await eventually(held, only_ours, what="the pushed schedule on every cluster")
    return schedule_id, slot


async def test_a_cluster_offline_for_the_slot_plays_it_from_its_stored_schedule(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = (await small_province(stack, eboards=True)).of(COMMUNE)  # and its e-board
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    clip = await upload(stack, tone_mp3)
    schedule_id, slot = await schedule_soon(stack, fleet, clip, in_s=6)
    # Confirmed by each: nobody is out of date.
    await eventually(lambda: out_of_date(stack), lambda rows: rows == [], what="confirmations")
    away = fleet.devices[specs[0].code]
    first_version = away.schedule.version
    [item] = away.schedule.items.values()
    assert item.starts_at == slot and item.media is not None
    assert item.media.sha256 == clip["sha256"]

    away.go_offline(seconds=60)  # across the slot: it comes back once it has played
    await eventually(
        lambda: stack.client.get(f"/api/v1/clusters/{away.spec.code}"),
        lambda r: r.json()["online"] is False,
        what="the broker's Last Will",
    )
    # A change while it is away: it cannot confirm the new version.
    changed = await stack.client.patch(
        f"/api/v1/schedules/{schedule_id}", json={"title": "Thông báo tiêm phòng (sửa)"}
    )
    assert changed.status_code == 200
    stale = await eventually(
        lambda: out_of_date(stack), lambda rows: len(rows) == 1, what="the stale cluster"
    )
    assert stale[0]["cluster"] == away.spec.code and stale[0]["version_held"] == first_version

    async def plays() -> dict[str, int]:
        return {
            code: sum(d.play_counts.values())
            - sum(n for k, n in d.play_counts.items() if k.startswith("local:"))
            + sum(d.local_plays.values())
            for code, d in fleet.devices.items()
        }

    await eventually(plays, lambda p: all(n == 1 for n in p.values()), timeout=30, what="plays")
    assert sum(away.local_plays.values()) == 1, "played from storage, offline"
    assert all(not d.local_plays for c, d in fleet.devices.items() if c != away.spec.code)
    away.come_back()

    # Back online: the control plane asks again, hears "played", and records it.
    async def states() -> set[str]:
        async with session_scope(stack.runtime.sessions) as session:
            rows = await session.scalars(select(Delivery.state))
            return set(rows.all())

    await eventually(states, lambda s: s == {"played"}, timeout=30, what="every delivery played")
    assert sum(away.local_plays.values()) == 1, "asked again, it did not play a second time"
    # Its heartbeat confirming the version travels apart from its answers (no order between
    # the two): read when it has come.
    await eventually(
        lambda: out_of_date(stack), lambda rows: rows == [], what="back online, the new version"
    )


async def test_a_play_made_offline_is_recorded_even_after_its_broadcast_expired(
    stack_factory: Callable[..., Any], fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    stack: Stack = await stack_factory(schedule_expiry_s=1)  # valid for seconds only
    specs = (await small_province(stack)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    clip = await upload(stack, tone_mp3)
    schedule_id, slot = await schedule_soon(stack, fleet, clip, in_s=5)
    away = fleet.devices[specs[0].code]
    away.go_offline(seconds=60)  # the broadcast expires while it is away

    async def away_delivery() -> tuple[int, list[str]]:
        async with session_scope(stack.runtime.sessions) as session:
            states = await session.scalars(
                select(Delivery.state)
                .join(Cluster, Cluster.id == Delivery.cluster_id)
                .where(Cluster.code == away.spec.code)
            )
            return sum(away.local_plays.values()), list(states.all())

    await eventually(
        away_delivery, lambda s: s == (1, ["expired"]), what="played away, then expired"
    )
    away.come_back()

    async def local_plays() -> list[dict[str, Any]]:
        response = await stack.client.get(f"/api/v1/schedules/{schedule_id}/local-plays")
        data: list[dict[str, Any]] = response.json()
        return data

    [play] = await eventually(local_plays, lambda p: len(p) == 1, timeout=30, what="the report")
    assert play["cluster"] == away.spec.code and play["broadcast_id"]
    started = datetime.fromisoformat(play["started_at"])
    assert abs((started - slot).total_seconds()) < 2, "played at its slot, from storage"
    async with session_scope(stack.runtime.sessions) as session:
        rows = (await session.execute(select(Delivery.cluster_id, Delivery.state))).all()
    states = sorted(state for _, state in rows)
    assert states.count("played") == len(specs) - 1
    assert states.count("expired") == 1, "the delivery stays expired; the play is recorded apart"
    assert sum(away.local_plays.values()) == 1


async def test_an_emergency_cuts_off_a_stored_play_which_is_dropped_not_resumed(
    stack: Stack, fleet_factory: Callable[..., Fleet], long_mp3: Path, tone_mp3: Path
) -> None:
    """The resume rule (docs/protocol.md 4.3) for scheduled plays, by both paths: the
    clusters playing the slot's command and one playing it from storage after missing the
    slot offline are all cut off by an emergency, and none takes the item up again."""
    specs = (await small_province(stack)).speakers(COMMUNE)
    fleet = fleet_factory(specs, time_compression=2)  # the 30 s news plays for 15 s
    await fleet.start()
    news, siren = await upload(stack, long_mp3), await upload(stack, tone_mp3)
    schedule_id, slot = await schedule_soon(stack, fleet, news, in_s=6)
    away = fleet.devices[specs[0].code]
    [item_id] = away.schedule.items
    away.go_offline(seconds=60)  # until it has started the item from storage

    async def away_state() -> tuple[bool, bool]:
        return item_id in away.schedule.played, away.online.is_set()

    await eventually(away_state, lambda s: s == (True, False), what="a stored play, offline")
    away.come_back()
    await eventually(away_state, lambda s: s == (True, True), what="a stored play, then online")
    assert not away.local_plays, "still playing from storage"
    [fired] = (await stack.client.get(f"/api/v1/schedules/{schedule_id}/firings")).json()
    # The others (the one away hears the command when it is back, from its MQTT session,
    # and says it already played the item from storage).
    starts = await eventually(
        lambda: _received_and_started(stack, fired["broadcast_id"], but=away.spec.code),
        lambda rows: sum(1 for _, started in rows if started) == len(specs) - 1,
        what="the others playing the slot's command",
    )
    for received, started in starts:
        if started is not None:  # sent ahead, held by the clusters until the slot
            assert received is not None and received < slot <= started < slot + timedelta(seconds=1)

    alarm = await send(stack, title="Cháy rừng", areas=[COMMUNE], media_sha256=siren["sha256"])
    await stack.wait_broadcast(alarm["id"], lambda b: counts(b, "played") == len(specs))
    cut = await stack.wait_broadcast(
        fired["broadcast_id"], lambda b: counts(b, "preempted") == len(specs)
    )
    assert cut["confirmed"] == len(specs)
    assert away.local_cut == {item_id} and not away.local_plays
    assert fleet.count(lambda d: d.play_counts[fired["broadcast_id"]] > 0) == 0, "none resumed"
    assert fleet.count(lambda d: d.play_counts[alarm["id"]] == 1) == len(specs)


async def _received_and_started(
    stack: Stack, broadcast_id: str, *, but: str
) -> list[tuple[datetime | None, datetime | None]]:
    """When each cluster but one confirmed the broadcast and started it."""
    async with session_scope(stack.runtime.sessions) as session:
        rows = await session.execute(
            select(Delivery.delivered_at, Delivery.playing_at)
            .join(Cluster, Cluster.id == Delivery.cluster_id)
            .where(Delivery.broadcast_id == broadcast_id, Cluster.code != but)
        )
        return [(received, started) for received, started in rows.all()]
