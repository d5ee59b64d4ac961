"""`broadcast loadtest --profile …`: the province's harder days, on the whole stack as
separate processes (the default profile, `emergency`, is bench/loadtest.py's run).

- `morning`: every commune's morning news starts at the same minute (one schedule per
  commune, held by each cluster and played by its own clock), and a province-wide
  emergency cuts in while it plays;
- `alert-storm`: a storm night: each district sends its own emergency in the same second,
  three waves a second apart (each cluster hears three, each cutting off the one before);
- `reconnect-storm`: the broker restarted under the whole province: every cluster
  reconnects at once, and an emergency is sent the moment the broker is back.

`--network` gives the simulated links a profile (NETWORKS): a LAN, a 4G link's latency,
or a weak 4G link that also loses acknowledgements and drops now and then.

Each writes NAME.json, and NAME.html and NAME.png (bench/report.py): the share of
clusters confirmed against time since the request, and completion per district.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import func, select

from areas.models import Area
from bench import report
from bench.loadtest import (
    EDITOR,
    POLL_S,
    PROVINCE,
    LoadtestOptions,
    bench_province,
    delivery_times_by_district,
    percentile,
    progress_bars,
    run_facts,
    times_by_district,
)
from bench.networks import NETWORKS
from bench.schedule import local_time, out_of_date, slot_starts
from broadcast.models import Delivery
from core.database import create_engine
from devices.models import Cluster
from devstack.orchestrate import wait_until
from devstack.province import Province
from devstack.synth import tone
from schedules.models import ScheduleFiring

PROFILES = ("emergency", "morning", "alert-storm", "reconnect-storm")

STORM_WAVES = 3
STORM_GAP_S = 1.0  # between waves: the duty officer's next bulletin
MORNING_LEAD_S = 20.0  # from the schedules saved to the slot: the pushes settle first
MORNING_CLIP_S = 30  # long enough to still be playing when the emergency cuts in
EMERGENCY_AFTER_SLOT_S = 3.0


def run_profile(options: LoadtestOptions, profile: str) -> dict[str, Any]:
    console = Console()
    network = NETWORKS[options.network]
    runs = {"morning": _morning, "alert-storm": _alert_storm, "reconnect-storm": _reconnect}
    with bench_province(options, console) as province:
        console.print(f"[bold]{profile}[/bold] over {options.network} ({network.describe()})")
        result, by_area = runs[profile](options, province, console)
    result = {
        "profile": profile,
        "network": options.network,
        "clusters": options.clusters,
        **result,
        **run_facts(province.database_url),
    }
    options.json_path.write_text(json.dumps(result, indent=2))
    report.write(result, by_area, options.json_path, title=TITLES[profile])
    console.print_json(json.dumps(result))
    console.print(f"report: {options.json_path.with_suffix('.html')} and .png")
    return result


TITLES = {
    "morning": "Morning schedule, and an emergency cutting in",
    "alert-storm": f"Alert storm: every district, {STORM_WAVES} waves",
    "reconnect-storm": "Broker restarted: every cluster reconnecting, an emergency sent",
}

ByArea = dict[str, list[float | None]]


# --- shared steps ---------------------------------------------------------------------


def _upload(client: httpx.Client, clip: Path) -> str:
    with clip.open("rb") as f:
        response = client.post("/api/v1/media", files={"file": (clip.name, f)})
    response.raise_for_status()
    sha: str = response.json()["sha256"]
    return sha


def _send(client: httpx.Client, title: str, areas: list[str], sha: str) -> tuple[str, datetime]:
    trigger = datetime.now(UTC)
    response = client.post(
        "/api/v1/broadcasts", json={"title": title, "areas": areas, "media_sha256": sha}
    )
    response.raise_for_status()
    return response.json()["id"], trigger


async def _confirmed_of(database_url: str, ids: list[str]) -> tuple[int, int]:
    """(deliveries confirmed, deliveries) of the broadcasts."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            confirmed, total = (
                await conn.execute(
                    select(func.count(Delivery.delivered_at), func.count()).where(
                        Delivery.broadcast_id.in_(ids)
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return int(confirmed), int(total)


def _wait_confirmed(
    database_url: str, ids: list[str], timeout: float, what: str, console: Console
) -> None:
    _wait_counting(lambda: asyncio.run(_confirmed_of(database_url, ids)), timeout, what, console)


def _wait_counting(
    count: Callable[[], tuple[int, int]], timeout: float, what: str, console: Console
) -> None:
    """Until `count()` gives (n, n), drawing n as it grows."""
    with progress_bars(console) as progress:
        task = progress.add_task(what)

        def done() -> bool:
            reached, total = count()
            progress.update(task, completed=reached, total=total)
            return reached >= total

        wait_until(done, timeout=timeout, what=what, every=POLL_S)


def _summary(rows: list[tuple[str, float | None]], prefix: str) -> dict[str, Any]:
    """All confirmed, median and lost of (district, seconds) rows, as the load test's."""
    done = [t for _, t in rows if t is not None]
    return {
        f"{prefix}_deliveries": len(rows),
        f"{prefix}_all_confirmed_s": round(max(done), 3) if done else None,
        f"{prefix}_p50_confirmed_s": round(percentile(done, 0.5), 3) if done else None,
        f"{prefix}_lost": len(rows) - len(done),
    }


# --- morning --------------------------------------------------------------------------


def _morning(
    options: LoadtestOptions, province: Province, console: Console
) -> tuple[dict[str, Any], ByArea]:
    url = province.database_url
    with httpx.Client(base_url=province.stack.api_url, timeout=120) as client:
        news = tone(province.work / "news.mp3", MORNING_CLIP_S, source="sine=frequency=550")
        bulletin = client.post(
            "/api/v1/bulletins",
            json={"title": "Bản tin sáng", "media_sha256": _upload(client, news)},
        ).json()
        client.post(f"/api/v1/bulletins/{bulletin['id']}/submit").raise_for_status()
        client.post(
            f"/api/v1/bulletins/{bulletin['id']}/approve", headers=EDITOR
        ).raise_for_status()
        communes = sorted(
            {c["areas"][-1] for c in client.get("/api/v1/clusters/provisioning").json()}
        )
        slot = (datetime.now(UTC) + timedelta(seconds=MORNING_LEAD_S)).replace(microsecond=0)
        for commune in communes:  # each commune's operator saves its own
            client.post(
                "/api/v1/schedules",
                json={
                    "title": "Bản tin sáng",
                    "bulletin_id": bulletin["id"],
                    "starts_local": local_time(slot),
                    "rule": "FREQ=DAILY",
                    "areas": [commune],
                },
            ).raise_for_status()
        console.print(f"{len(communes)} communes' morning schedules saved, slot at {slot:%H:%M:%S}")
        wait_until(
            lambda: out_of_date(client) == 0, timeout=options.timeout_s, what="pushes", every=1
        )
        alarm = tone(province.work / "alert.mp3", 5, source="sine=frequency=660")
        sha = _upload(client, alarm)
        wait = (slot - datetime.now(UTC)).total_seconds() + EMERGENCY_AFTER_SLOT_S
        if wait > 0:
            time.sleep(wait)  # the emergency is due at a moment of the schedule, not an event
        broadcast_id, trigger = _send(client, "Lũ khẩn cấp", [PROVINCE], sha)
    _wait_confirmed(url, [broadcast_id], options.timeout_s, "the emergency confirmed", console)
    rows = asyncio.run(delivery_times_by_district(url, broadcast_id, trigger))
    slot_stats = asyncio.run(slot_starts(url, slot))
    # The news was still playing everywhere: the emergency cut each cluster's off.
    wait_until(
        lambda: asyncio.run(_slot_states(url, slot)).get("playing", 0) == 0,
        timeout=options.timeout_s,
        what="the morning news cut off",
        every=POLL_S,
    )
    states = asyncio.run(_slot_states(url, slot))
    return {
        "communes": len(communes),
        "emergency_after_slot_s": round((trigger - slot).total_seconds(), 3),
        **slot_stats,
        "slot_preempted": states.get("preempted", 0),
        **_summary(rows, "emergency"),
    }, report.group(rows)


async def _slot_states(database_url: str, slot: datetime) -> dict[str, int]:
    """The slot's deliveries by state."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            fired = select(ScheduleFiring.broadcast_id).where(ScheduleFiring.slot_at == slot)
            found = await conn.execute(
                select(Delivery.state, func.count())
                .where(Delivery.broadcast_id.in_(fired.scalar_subquery()))
                .group_by(Delivery.state)
            )
            return {state: int(n) for state, n in found.all()}
    finally:
        await engine.dispose()


# --- alert storm ----------------------------------------------------------------------


async def _districts(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            province_id = await conn.scalar(select(Area.id).where(Area.code == PROVINCE))
            codes = (
                await conn.scalars(
                    select(Area.code).where(Area.parent_id == province_id).order_by(Area.code)
                )
            ).all()
    finally:
        await engine.dispose()
    return list(codes)


async def _wave(
    api_url: str, districts: list[str], sha: str, n: int
) -> list[tuple[str, datetime, float]]:
    """Every district's emergency at once: (broadcast id, sent at, seconds to the answer)."""

    async def one(client: httpx.AsyncClient, code: str) -> tuple[str, datetime, float]:
        sent = datetime.now(UTC)
        began = time.perf_counter()
        response = await client.post(
            "/api/v1/broadcasts",
            json={"title": f"Bão: cảnh báo {n} ({code})", "areas": [code], "media_sha256": sha},
        )
        response.raise_for_status()
        return response.json()["id"], sent, time.perf_counter() - began

    async with httpx.AsyncClient(base_url=api_url, timeout=120) as client:
        return list(await asyncio.gather(*(one(client, code) for code in districts)))


def _alert_storm(
    options: LoadtestOptions, province: Province, console: Console
) -> tuple[dict[str, Any], ByArea]:
    url, api = province.database_url, province.stack.api_url
    districts = asyncio.run(_districts(url))
    with httpx.Client(base_url=api, timeout=120) as client:
        shas = [
            _upload(
                client,
                tone(province.work / f"storm-{n}.mp3", 5, source=f"sine=frequency={500 + 60 * n}"),
            )
            for n in range(STORM_WAVES)
        ]
    sent: list[tuple[str, datetime, float]] = []
    began = time.perf_counter()
    for n, sha in enumerate(shas):
        if n:
            time.sleep(STORM_GAP_S)  # the waves' pacing is the scenario, not a wait for state
        sent += asyncio.run(_wave(api, districts, sha, n + 1))
    console.print(
        f"{len(sent)} emergencies sent in {time.perf_counter() - began:.2f} s; "
        "waiting for every cluster to confirm every one"
    )
    ids = [broadcast_id for broadcast_id, _, _ in sent]
    _wait_confirmed(url, ids, options.timeout_s, "every storm emergency confirmed", console)
    first = min(at for _, at, _ in sent)
    by_broadcast = asyncio.run(times_by_district(url, {b: at for b, at, _ in sent}))
    rows: list[tuple[str, float | None]] = []
    per_wave: dict[str, Any] = {}
    last_confirmed = first
    for n in range(STORM_WAVES):
        wave_rows: list[tuple[str, float | None]] = []
        for broadcast_id, at, _ in sent[n * len(districts) : (n + 1) * len(districts)]:
            own = by_broadcast[broadcast_id]
            done = [t for _, t in own if t is not None]
            if done:
                last_confirmed = max(last_confirmed, at + timedelta(seconds=max(done)))
            wave_rows += own
        per_wave.update(_summary(wave_rows, f"wave{n + 1}"))
        rows += wave_rows
    answers = sorted(seconds for _, _, seconds in sent)
    return {
        "districts": len(districts),
        "emergencies": len(sent),
        "request_answered_p50_s": round(answers[len(answers) // 2], 3),
        "request_answered_max_s": round(answers[-1], 3),
        **_summary(rows, "storm"),  # each delivery from its own broadcast's request
        # From the first request to the last cluster's confirmation of the last wave.
        "storm_first_request_to_last_confirmed_s": round(
            (last_confirmed - first).total_seconds(), 3
        ),
        **per_wave,
    }, report.group(rows)


# --- reconnect storm ------------------------------------------------------------------


async def _seen_since(database_url: str, since: datetime) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            seen = await conn.scalar(
                select(func.count()).select_from(Cluster).where(Cluster.last_seen_at >= since)
            )
    finally:
        await engine.dispose()
    return int(seen or 0)


def _reconnect(
    options: LoadtestOptions, province: Province, console: Console
) -> tuple[dict[str, Any], ByArea]:
    url = province.database_url
    expected = round(options.clusters * NETWORKS[options.network].online_share)
    with httpx.Client(base_url=province.stack.api_url, timeout=120) as client:
        sha = _upload(client, tone(province.work / "alert.mp3", 5, source="sine=frequency=660"))
        down = time.perf_counter()
        province.broker.restart()
        back = datetime.now(UTC)
        restart_s = time.perf_counter() - down
        console.print(f"broker restarted in {restart_s:.2f} s; every cluster reconnecting")
        broadcast_id, trigger = _send(client, "Cháy rừng: khẩn cấp", [PROVINCE], sha)
        _wait_counting(
            lambda: (asyncio.run(_seen_since(url, back)), expected),
            options.timeout_s,
            "clusters reconnected",
            console,
        )
        reconnected_s = (datetime.now(UTC) - back).total_seconds()
        _wait_confirmed(url, [broadcast_id], options.timeout_s, "the emergency confirmed", console)
        online = client.get("/api/v1/health", params={"area": PROVINCE}).json()[0]["online"]
    rows = asyncio.run(delivery_times_by_district(url, broadcast_id, trigger))
    return {
        "broker_restart_s": round(restart_s, 3),
        # Seen by the control plane (a status or heartbeat after the broker was back),
        # read every POLL_S: so up to that much late.
        "all_reconnected_s": round(reconnected_s, 3),
        "online_after": online,
        **_summary(rows, "emergency"),
    }, report.group(rows)
