"""`broadcast loadtest-console`: the web console on a whole province (issue 7's "pages
under one second on a province's data, the live emergency view smooth with 1,639
clusters updating"). The stack runs as separate processes with every cluster online;
measured: each page's time to answer (signed in, as the duty officer), and the live
view's server-sent events while a province-wide emergency goes out: time to the first
event, events until every cluster has an outcome, the largest event.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import httpx
from rich.console import Console

from bench.loadtest import PROVINCE, BenchOptions, bench_province, run_facts
from devstack.seed import DEMO_PASSWORD, ensure_demo_users

PAGES = (
    "/console",
    "/console/emergency",
    "/console/health",
    "/console/reports",
    "/console/schedule",
    "/console/bulletins",
)
REQUESTS = 10


def _pages(client: httpx.Client) -> dict[str, dict[str, float]]:
    timings: dict[str, dict[str, float]] = {}
    for page in PAGES:
        took = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            client.get(page).raise_for_status()
            took.append((time.perf_counter() - t0) * 1000)
        timings[page] = {
            "p50_ms": round(statistics.median(took), 1),
            "max_ms": round(max(took), 1),
        }
    return timings


def _live(client: httpx.Client) -> dict[str, Any]:
    """A province-wide emergency, watched as the live page watches it."""
    clip = client.post(
        "/api/v1/media/speech", json={"text": "Diễn tập cảnh báo lũ toàn tỉnh.", "language": "vi"}
    )
    clip.raise_for_status()
    sent = client.post(
        "/api/v1/broadcasts",
        json={"title": "Diễn tập", "areas": [PROVINCE], "media_sha256": clip.json()["sha256"]},
    )
    sent.raise_for_status()
    began = time.perf_counter()
    first = None
    events, largest, last = 0, 0, None
    with client.stream("GET", f"/api/v1/broadcasts/{sent.json()['id']}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: ") and line != "data: {}":
                events += 1
                largest = max(largest, len(line))
                first = first if first is not None else time.perf_counter() - began
                last = json.loads(line[6:])
            if line == "event: done":
                break
    assert last is not None
    return {
        "first_event_s": round(first or 0, 2),
        "events": events,
        "until_done_s": round(time.perf_counter() - began, 1),
        "largest_event_bytes": largest,
        "final_counts": last["counts"],
    }


def run_console_bench(options: BenchOptions) -> dict[str, Any]:
    console = Console()
    result: dict[str, Any] = {"clusters": options.clusters}
    with bench_province(options, console) as province:
        asyncio.run(ensure_demo_users(province.database_url))
        with httpx.Client(base_url=province.stack.api_url, timeout=120) as client:
            client.post(
                "/api/v1/auth/login", json={"username": "truc.ban", "password": DEMO_PASSWORD}
            ).raise_for_status()  # the session cookie stays on the client
            result["pages"] = _pages(client)
            result["live"] = _live(client)
        result.update(run_facts(province.database_url))
    options.json_path.write_text(json.dumps(result, indent=2))
    console.print_json(json.dumps(result))
    return result
