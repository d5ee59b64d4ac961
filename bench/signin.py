"""`broadcast loadtest-signin`: the duty officer's emergency request while anonymous
sign-ins flood the API (issue 19: 16 anonymous sign-ins with unknown names pushed the
emergency POST from 14 ms to about 2 s, the argon2 check running on the event loop
inside the lock sending takes). The API runs in its own process on the demo province,
on one core of its own; the flood and the duty officer's client run on the other (an
attacker's CPU is not the server's). The flood comes from many source addresses
(127.0.0.2, .3, …), so the per-address budget does not simply turn it away."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console

from bench.loadtest import run_facts
from devstack.orchestrate import demo_api_on_sqlite
from devstack.synth import tone

EMERGENCIES = 10
EVERY_S = 0.5  # between emergencies


def run_signin_bench(flooders: int, json_path: Path) -> dict[str, Any]:
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="signin-bench-"))
    stack = demo_api_on_sqlite(work)
    try:
        assert stack.api is not None
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) > 1:  # the server on one core, the clients on the rest
            os.sched_setaffinity(stack.api.pid, cores[:1])
            for child in psutil.Process(stack.api.pid).children(recursive=True):
                os.sched_setaffinity(child.pid, cores[:1])
            os.sched_setaffinity(0, cores[1:])
        clip = tone(work / "alert.mp3", 5, sample_rate=16000, bitrate="16k")
        with httpx.Client(base_url=stack.api_url, timeout=60) as client, clip.open("rb") as f:
            sha = client.post("/api/v1/media", files={"file": ("alert.mp3", f)}).json()["sha256"]
        console.print("emergencies alone ...")
        alone = _emergencies(stack.api_url, sha)
        console.print(f"emergencies under a flood from {flooders} addresses ...")
        stop = threading.Event()
        counts: list[dict[int, int]] = [{} for _ in range(flooders)]
        threads = [
            threading.Thread(target=_flood, args=(stack.api_url, n, stop, counts[n]), daemon=True)
            for n in range(flooders)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # the flood under way
        flooded = _emergencies(stack.api_url, sha)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        stack.stop()
    answers: dict[str, int] = {}
    for c in counts:
        for status, n in c.items():
            answers[str(status)] = answers.get(str(status), 0) + n
    result = {
        "flood_addresses": flooders,
        "cores": "API on one core, the clients on the other",
        "emergency_request_s": {"alone": _summary(alone), "under_flood": _summary(flooded)},
        "sign_in_answers_during_flood": answers,
        **run_facts(stack.env["BROADCAST_DATABASE_URL"]),
    }
    json_path.write_text(json.dumps(result, indent=2))
    console.print_json(json.dumps(result))
    return result


def _emergencies(api_url: str, sha: str) -> list[float]:
    times = []
    with httpx.Client(base_url=api_url, timeout=60) as client:
        for n in range(EMERGENCIES):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/broadcasts",
                json={
                    "title": f"Diễn tập {n}",
                    "areas": ["70"],
                    "media_sha256": sha,
                    "drill": True,
                },
            )
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            time.sleep(EVERY_S)
    return times


def _flood(api_url: str, n: int, stop: threading.Event, counts: dict[int, int]) -> None:
    transport = httpx.HTTPTransport(local_address=f"127.0.0.{2 + n}")
    with httpx.Client(base_url=api_url, timeout=60, transport=transport) as client:
        k = 0
        while not stop.is_set():
            k += 1
            response = client.post(
                "/api/v1/auth/login",
                json={"username": f"khong.co.{n}.{k}", "password": "đoán bừa một mật khẩu"},
            )
            counts[response.status_code] = counts.get(response.status_code, 0) + 1


def _summary(times: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(times), 4),
        "max": round(max(times), 4),
        "min": round(min(times), 4),
    }
