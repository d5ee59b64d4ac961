"""`broadcast loadtest-schedule`: a province's daily schedule at scale (issue 4's benchmark).

Every commune gets three daily slots (three recurring schedules of an approved bulletin,
eight hours apart); the first slot of every commune is the same minute, as the morning
news is. Measured, with the whole stack in separate processes:

1. **expansion**: a week of occurrences of every schedule, per cluster, in this process
   from the database (the same code the scheduler and the push use);
2. **push**: from the last schedule saved until every cluster holds (has confirmed in a
   heartbeat) its signed schedule document; then again after one province-wide change,
   which gives every cluster a new document at once;
3. **slot**: how late after the slot each cluster started playing, by its own clock (the
   `device_at` of its `playing` acknowledgement; the simulators share this machine's
   clock) and as the control plane heard it, the latest cluster above all.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from rich.console import Console
from sqlalchemy import func, select

from bench.loadtest import EDITOR, MEDIA_SECONDS, PROVINCE, BenchOptions, bench_province, run_facts
from broadcast.models import Broadcast, Delivery, DeliveryEvent
from broadcast.states import DeliveryState
from core.database import create_engine, create_session_maker
from devices.models import Cluster
from devstack.orchestrate import (
    wait_until,
)
from devstack.synth import tone
from schedules import queries
from schedules.models import Schedule, ScheduleFiring
from schedules.recurrence import slots
from schedules.targets import ClusterIndex

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SLOTS_PER_DAY = 3
SLOT_SPACING = timedelta(hours=8)
POLL_S = 0.25


@dataclass(frozen=True, kw_only=True)
class ScheduleBenchOptions(BenchOptions):
    lead_s: float = 60.0  # from the start of saving schedules to the first slot
    timeout_s: float = 180.0


def local_time(instant: datetime) -> str:
    return instant.astimezone(VN).replace(tzinfo=None).isoformat(timespec="seconds")


def out_of_date(client: httpx.Client) -> int:
    response = client.get("/api/v1/schedules/out-of-date", params={"area": PROVINCE})
    response.raise_for_status()
    return len(response.json())


async def _holding_since(database_url: str, since: datetime) -> int:
    """Clusters that were pushed a document after `since` and confirmed holding it."""
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        held = await conn.scalar(
            select(func.count())
            .select_from(Cluster)
            .where(
                Cluster.schedule_pushed_at >= since,
                Cluster.schedule_version_held == Cluster.schedule_version,
            )
        )
    await engine.dispose()
    return int(held or 0)


def _holding(database_url: str, clusters: int, since: datetime, timeout: float) -> float:
    """Seconds from `since` until every cluster holds a document pushed after it."""
    wait_until(
        lambda: asyncio.run(_holding_since(database_url, since)) >= clusters,
        timeout=timeout,
        what="every cluster holding its new schedule",
        every=POLL_S,
    )
    return (datetime.now(UTC) - since).total_seconds()


async def _expand_a_week(database_url: str, start: datetime) -> dict[str, Any]:
    """A week of every schedule's occurrences, per cluster, as the scheduler computes them."""
    engine = create_engine(database_url)
    sessions = create_session_maker(engine)
    async with sessions() as session:
        schedules = (await session.scalars(select(Schedule))).all()
        began = time.perf_counter()
        index = await ClusterIndex.load(session)
        per_cluster: Counter[int] = Counter()
        occurrences = 0
        for schedule in schedules:
            week = slots(queries.recurrence_of(schedule), start, start + timedelta(days=7))
            clusters = index.clusters_of(schedule)
            occurrences += len(week)
            for cluster_id in clusters:
                per_cluster[cluster_id] += len(week)
        took = time.perf_counter() - began
    await engine.dispose()
    return {
        "schedules": len(schedules),
        "week_occurrences": occurrences,
        "week_cluster_plays": sum(per_cluster.values()),
        "expand_week_s": round(took, 3),
    }


async def slot_starts(database_url: str, slot: datetime) -> dict[str, Any]:
    """When the slot's broadcasts were written, and when each cluster started: by its own
    clock (`device_at` of its `playing`; the simulators share this machine's clock) and
    when the control plane heard it."""
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        firings = (
            await conn.execute(
                select(ScheduleFiring.broadcast_id, ScheduleFiring.fired_at).where(
                    ScheduleFiring.slot_at == slot
                )
            )
        ).all()
        ids = [f[0] for f in firings if f[0]]
        written = (
            await conn.execute(select(Broadcast.created_at).where(Broadcast.id.in_(ids)))
        ).all()
        deliveries = await conn.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.broadcast_id.in_(ids))
        )
        started = (
            await conn.execute(
                select(DeliveryEvent.device_at, DeliveryEvent.at)
                .join(Delivery, DeliveryEvent.delivery_id == Delivery.id)
                .where(Delivery.broadcast_id.in_(ids), DeliveryEvent.state == DeliveryState.PLAYING)
            )
        ).all()
    await engine.dispose()

    def since_slot(values: list[datetime]) -> list[float]:
        return sorted((v - slot).total_seconds() for v in values)

    fired = since_slot([f[1] for f in firings])
    sent = since_slot([w[0] for w in written])
    device = since_slot([d for d, _ in started if d is not None])
    heard = since_slot([h for _, h in started])
    return {
        "slot_broadcasts": len(firings),
        "slot_deliveries": deliveries or 0,
        "slot_started": len(heard),
        "slot_fired_s": round(fired[0], 3) if fired else None,
        # When each broadcast was written, from the slot (negative: ahead of it).
        "slot_written_first_s": round(sent[0], 3) if sent else None,
        "slot_written_last_s": round(sent[-1], 3) if sent else None,
        "slot_start_p50_s": round(statistics.median(device), 3) if device else None,
        "slot_start_latest_s": round(device[-1], 3) if device else None,
        "slot_start_heard_p50_s": round(statistics.median(heard), 3) if heard else None,
        "slot_start_heard_latest_s": round(heard[-1], 3) if heard else None,
    }


def run_schedule_bench(options: ScheduleBenchOptions) -> dict[str, Any]:
    console = Console()
    result: dict[str, Any] = {"clusters": options.clusters}
    with bench_province(options, console) as province:
        with httpx.Client(base_url=province.stack.api_url, timeout=120) as client:
            result.update(_run(options, client, province.database_url, province.work, console))
    result.update(run_facts(province.database_url))
    options.json_path.write_text(json.dumps(result, indent=2))
    console.print_json(json.dumps(result))
    return result


def _run(
    options: ScheduleBenchOptions,
    client: httpx.Client,
    database_url: str,
    work: Path,
    console: Console,
) -> dict[str, Any]:
    clip = tone(work / "news.mp3", MEDIA_SECONDS, source="sine=frequency=550")
    with clip.open("rb") as f:
        sha = client.post("/api/v1/media", files={"file": ("news.mp3", f)}).json()["sha256"]
    bulletin = client.post(
        "/api/v1/bulletins", json={"title": "Bản tin thời sự", "media_sha256": sha}
    ).json()
    client.post(f"/api/v1/bulletins/{bulletin['id']}/submit").raise_for_status()
    client.post(f"/api/v1/bulletins/{bulletin['id']}/approve", headers=EDITOR).raise_for_status()
    provisioning = client.get("/api/v1/clusters/provisioning").json()
    communes = sorted({c["areas"][-1] for c in provisioning})

    first_slot = (datetime.now(UTC) + timedelta(seconds=options.lead_s)).replace(microsecond=0)
    began = time.perf_counter()
    for commune in communes:
        for n in range(SLOTS_PER_DAY):
            response = client.post(
                "/api/v1/schedules",
                json={
                    "title": f"Bản tin {('sáng', 'trưa', 'tối')[n]}",
                    "bulletin_id": bulletin["id"],
                    "starts_local": local_time(first_slot + n * SLOT_SPACING),
                    "rule": "FREQ=DAILY",
                    "areas": [commune],
                },
            )
            response.raise_for_status()
    saved = time.perf_counter()
    console.print(f"{len(communes) * SLOTS_PER_DAY} schedules saved in {saved - began:.1f} s")

    # One change that touches every cluster's document: a province-wide one-off, saved
    # once the pushes of the communes' schedules have settled.
    wait_until(
        lambda: out_of_date(client) == 0, timeout=options.timeout_s, what="pushes settled", every=1
    )
    changed = datetime.now(UTC)
    client.post(
        "/api/v1/schedules",
        json={
            "title": "Thông báo của tỉnh",
            "bulletin_id": bulletin["id"],
            "starts_local": local_time(first_slot + timedelta(hours=4)),
            "areas": [PROVINCE],
        },
    ).raise_for_status()
    full_push = _holding(database_url, options.clusters, changed, options.timeout_s)
    console.print(f"a province-wide change held by every cluster in {full_push:.1f} s")

    expansion = asyncio.run(_expand_a_week(database_url, first_slot))
    console.print(
        f"a week: {expansion['week_cluster_plays']} cluster plays from "
        f"{expansion['schedules']} schedules expanded in {expansion['expand_week_s']} s"
    )

    left = (first_slot - datetime.now(UTC)).total_seconds()
    if left < 0:
        console.print(f"[red]the slot passed {-left:.0f} s before the pushes ended; raise --lead")
    expected = options.clusters

    def started() -> bool:
        stats = asyncio.run(slot_starts(database_url, first_slot))
        return bool(stats["slot_started"] >= expected)

    wait_until(
        started,
        timeout=max(left, 0) + MEDIA_SECONDS + options.timeout_s,
        what="every cluster playing the slot",
        every=1.0,
    )
    slot = asyncio.run(slot_starts(database_url, first_slot))
    console.print(
        f"slot: {slot['slot_started']} clusters started, the latest "
        f"{slot['slot_start_latest_s']} s after the slot"
    )
    return {
        "schedules_saved": len(communes) * SLOTS_PER_DAY,
        "save_all_s": round(saved - began, 2),
        "push_full_change_s": round(full_push, 2),
        **expansion,
        **slot,
        "slot_lost": expected - slot["slot_started"],
    }
