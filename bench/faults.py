"""`broadcast loadtest-faults`: a province-wide emergency on a bad day, one fault at a time,
on the whole stack as separate processes. For each: the time from the request until every
reachable cluster confirmed, how many never did (lost), and how many played it twice.

Faults: the broker restarted mid-alert; the API killed with SIGKILL mid-alert and
started again; the database server crashed and restarted mid-alert (a PostgreSQL server
of the bench's own, devstack/private_postgres.py); 30 % of the links dropping every 4 s;
every acknowledgement sent twice and up to a second late (so out of order); clocks 10
minutes ahead and behind. With `--replicas N` the API runs as N processes on one
PostgreSQL and broker, and `api-kill` kills the job leader for good.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from bench.loadtest import (
    POLL_S,
    PROVINCE,
    BenchOptions,
    bench_province,
    run_facts,
)
from broadcast.models import Delivery, DeliveryEvent
from broadcast.states import DeliveryState
from core.database import create_engine
from devstack.orchestrate import start_api, wait_until
from devstack.private_postgres import PrivatePostgres
from devstack.province import Province, Replica
from devstack.synth import tone

SPREAD_S = 1.0  # acknowledgements up to this late: the fault lands among them

# Each scenario: the simulator's options, and what is done once the first cluster confirmed.
SCENARIOS: dict[str, tuple[str, ...]] = {
    "baseline": ("--latency", str(SPREAD_S)),
    "broker-restart": ("--latency", str(SPREAD_S)),
    "api-kill": ("--latency", str(SPREAD_S)),
    "db-restart": ("--latency", str(SPREAD_S)),
    "flapping": ("--flapping", "0.3"),
    "duplicates": ("--duplicate-acks", "1", "--latency", str(SPREAD_S)),
    "clock-skew": ("--clock-skew", "600"),
}


@dataclass(frozen=True, kw_only=True)
class FaultBenchOptions(BenchOptions):
    scenarios: tuple[str, ...] = tuple(SCENARIOS)
    timeout_s: float = 120.0


def run_fault_bench(options: FaultBenchOptions) -> dict[str, Any]:
    console = Console()
    results: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    for name in options.scenarios:
        # Flapping links: at any moment a few are reconnecting.
        online_share = 0.9 if name == "flapping" else 1.0
        with ExitStack() as resources:
            scenario_options, database = options, None
            if name == "db-restart":  # the shared server is not ours to crash: our own
                database = resources.enter_context(PrivatePostgres())
                scenario_options = replace(options, database_url=database.url)
            province = resources.enter_context(
                bench_province(
                    scenario_options,
                    console,
                    simulator_args=SCENARIOS[name],
                    online_share=online_share,
                )
            )
            console.print(f"[bold]{name}[/bold]: {options.clusters} clusters")
            results[name] = _scenario(name, province, options, console, database)
            facts = run_facts(province.database_url)
    report = {
        "clusters": options.clusters,
        "replicas": options.replicas,
        "network": options.network,
        "scenarios": results,
        **facts,
    }
    options.json_path.write_text(json.dumps(report, indent=2))
    _table(console, report)
    return report


def _scenario(
    name: str,
    province: Province,
    options: FaultBenchOptions,
    console: Console,
    database: PrivatePostgres | None,
) -> dict[str, Any]:
    clip = tone(province.work / "alert.mp3", 5, source="sine=frequency=660")
    # With replicas, the harness talks to one that does not lead: the leader is the one
    # killed in `api-kill`.
    leader = _leader(province)
    harness = next((r for r in province.replicas if r is not leader), province.replicas[0])
    with httpx.Client(base_url=harness.url, timeout=60) as client:
        with clip.open("rb") as f:
            sha = client.post("/api/v1/media", files={"file": ("alert.mp3", f)}).json()["sha256"]
        trigger = datetime.now(UTC)
        started = time.perf_counter()
        response = client.post(
            "/api/v1/broadcasts",
            json={"title": f"Fault test: {name}", "areas": [PROVINCE], "media_sha256": sha},
        )
        response.raise_for_status()
        broadcast_id = response.json()["id"]
        _wait(lambda: _confirmed(client, broadcast_id) > 0, started + options.timeout_s)
        confirmed_before = _confirmed(client, broadcast_id)
        injected_s = time.perf_counter() - started
        _inject(name, province, database, leader)
        console.print(f"  {name} at {injected_s:.2f} s ({confirmed_before} confirmed)")
        _wait(
            lambda: _all_played(client, broadcast_id, options.clusters),
            started + options.timeout_s,
        )
    confirmed, played_twice, last = asyncio.run(_record(province.database_url, broadcast_id))
    return {
        "fault_at_s": round(injected_s, 3),
        "confirmed_before_fault": confirmed_before,
        "all_confirmed_s": round((last - trigger).total_seconds(), 3) if last else None,
        "confirmed": confirmed,
        "lost": options.clusters - confirmed,
        "played_twice": played_twice,
    }


def _leader(province: Province) -> Replica | None:
    """The replica holding the job leadership (None with one replica)."""
    if len(province.replicas) < 2:
        return None
    wait_until(lambda: any(r.leads() for r in province.replicas), timeout=30, what="a job leader")
    return next(r for r in province.replicas if r.leads())


def _inject(
    name: str, province: Province, database: PrivatePostgres | None, leader: Replica | None
) -> None:
    stack = province.stack
    if name == "broker-restart":
        province.broker.restart()
    elif name == "api-kill" and leader is not None:
        # Several replicas: the leader dies for good; a survivor takes over its share of
        # the acknowledgements at once and its jobs once the database lets go of its lock.
        leader.process.kill()
        leader.process.wait()
    elif name == "api-kill":
        assert stack.api is not None
        stack.api.kill()
        stack.api.wait()
        start_api(stack, int(stack.api_url.rsplit(":", 1)[1]), log=province.work / "api-2.log")
    elif name == "db-restart":
        assert database is not None
        database.restart()


def _wait(done: Callable[[], bool], deadline: float) -> None:
    while time.perf_counter() < deadline:
        try:
            if done():
                return
        except httpx.HTTPError:
            pass  # the API is restarting
        time.sleep(POLL_S / 5)


def _state(client: httpx.Client, broadcast_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/broadcasts/{broadcast_id}", params={"unconfirmed_limit": 0})
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def _confirmed(client: httpx.Client, broadcast_id: str) -> int:
    return int(_state(client, broadcast_id)["confirmed"])


def _all_played(client: httpx.Client, broadcast_id: str, everyone: int) -> bool:
    """Every cluster confirmed and played (one read of the broadcast)."""
    state = _state(client, broadcast_id)
    return bool(state["confirmed"] >= everyone and state["counts"].get("played", 0) >= everyone)


async def _record(url: str, broadcast_id: str) -> tuple[int, int, datetime | None]:
    """(clusters confirmed, deliveries with more than one `played` event, last confirmed)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            confirmed, last = (
                await conn.execute(
                    select(
                        func.count(Delivery.delivered_at), func.max(Delivery.delivered_at)
                    ).where(Delivery.broadcast_id == broadcast_id)
                )
            ).one()
            twice = await conn.scalar(
                select(func.count()).select_from(
                    select(DeliveryEvent.delivery_id)
                    .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                    .where(
                        Delivery.broadcast_id == broadcast_id,
                        DeliveryEvent.state == DeliveryState.PLAYED,
                    )
                    .group_by(DeliveryEvent.delivery_id)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
    finally:
        await engine.dispose()
    return int(confirmed), int(twice or 0), last


def _table(console: Console, report: dict[str, Any]) -> None:
    table = Table(title=f"faults: {report['clusters']} clusters")
    for column in ("scenario", "fault at (s)", "all confirmed (s)", "lost", "played twice"):
        table.add_column(column, justify="right")
    for name, result in report["scenarios"].items():
        table.add_row(
            name,
            str(result["fault_at_s"]),
            str(result["all_confirmed_s"]),
            str(result["lost"]),
            str(result["played_twice"]),
        )
    console.print(table)
