"""`broadcast loadtest-telemetry`: heartbeats from a simulated province at a high rate
(issue 5's benchmark). Every cluster reports every `interval` seconds until `heartbeats`
have arrived; measured: heartbeats a second the control plane keeps up with (each one
updating the cluster's latest state and, where due, its history), whether a backlog
builds, and how long the province's health rollup takes to answer meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import func, select

from bench.loadtest import PROVINCE, BenchOptions, bench_province, run_facts
from core.database import create_engine
from health.models import ClusterHealth, TelemetrySample

ROLLUP_REQUESTS = 20


@dataclass(frozen=True, kw_only=True)
class TelemetryBenchOptions(BenchOptions):
    heartbeats: int
    interval_s: float


def _ingest(client: httpx.Client) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/api/v1/ingest").json()
    return data


async def _rollup_query_ms(database_url: str) -> list[float]:
    """The rollup as a query alone, from this process (no HTTP, no event loop shared with
    the ingest); the heartbeats still arrive meanwhile."""
    from core.database import create_session_maker, session_scope
    from core.settings import Settings
    from health import service

    engine = create_engine(database_url)
    sessions = create_session_maker(engine)
    settings = Settings(database_url=database_url)
    times = []
    for _ in range(ROLLUP_REQUESTS):
        t0 = time.perf_counter()
        async with session_scope(sessions) as session:
            await service.rollup(session=session, settings=settings, area_code=PROVINCE)
        times.append((time.perf_counter() - t0) * 1000)
    await engine.dispose()
    return times


async def _rows(database_url: str) -> tuple[int, int]:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        latest = await conn.scalar(select(func.count()).select_from(ClusterHealth))
        samples = await conn.scalar(select(func.count()).select_from(TelemetrySample))
    await engine.dispose()
    return int(latest or 0), int(samples or 0)


def run_telemetry_bench(options: TelemetryBenchOptions) -> dict[str, Any]:
    console = Console()
    result: dict[str, Any] = {
        "clusters": options.clusters,
        "interval_s": options.interval_s,
        "offered_per_s": round(options.clusters / options.interval_s),
    }
    with bench_province(options, console, heartbeat_s=options.interval_s) as province:
        with httpx.Client(base_url=province.stack.api_url, timeout=60) as client:
            start = _ingest(client)["counts"].get("hb_received", 0)
            began = time.monotonic()
            series: list[tuple[float, int, int]] = []  # (seconds, received, backlog)
            while True:
                time.sleep(1.0)
                stats = _ingest(client)
                got = stats["counts"].get("hb_received", 0) - start
                series.append((time.monotonic() - began, got, stats["backlog"]["link"]))
                console.print(
                    f"{series[-1][0]:5.1f} s  {got:>7} heartbeats  backlog {series[-1][2]}"
                )
                if got >= options.heartbeats:
                    break
            rollup_ms = []
            for _ in range(ROLLUP_REQUESTS):  # while the heartbeats keep coming
                t0 = time.perf_counter()
                client.get("/api/v1/health", params={"area": PROVINCE}).raise_for_status()
                rollup_ms.append((time.perf_counter() - t0) * 1000)
            query_ms = asyncio.run(_rollup_query_ms(province.database_url))
        latest, samples = asyncio.run(_rows(province.database_url))
    seconds, received, _ = series[-1]
    backlogs = [b for _, _, b in series]
    result.update(
        {
            "heartbeats": received,
            "seconds": round(seconds, 1),
            "sustained_per_s": round(received / seconds),
            "backlog_max": max(backlogs),
            "backlog_at_end": backlogs[-1],
            "latest_state_rows": latest,
            "history_samples": samples,
            "rollup_ms_p50": round(statistics.median(rollup_ms), 1),
            "rollup_ms_max": round(max(rollup_ms), 1),
            "rollup_query_ms_p50": round(statistics.median(query_ms), 1),
            "rollup_query_ms_max": round(max(query_ms), 1),
            **run_facts(province.database_url),
        }
    )
    options.json_path.write_text(json.dumps(result, indent=2))
    console.print_json(json.dumps(result))
    return result
