"""`broadcast loadtest-ingest`: upload a long WAV to a running API (its own process) and
measure the wall time, the API's peak memory, and how the health endpoint answers
meanwhile (the event loop must stay free while ffmpeg works)."""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console

from bench.loadtest import run_facts
from devstack.orchestrate import api_on_sqlite, start_api

HEALTH_EVERY_S = 0.05
MEMORY_EVERY_S = 0.05
HEALTH_TARGET_S = 0.1


def long_wav(path: Path, minutes: float) -> Path:
    """CD-quality stereo speech-like noise: the worst case a district office uploads."""
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi"),
            *("-i", f"anoisesrc=color=pink:amplitude=0.2:d={minutes * 60}"),
            *("-af", "volume='0.5+0.5*sin(2*PI*0.3*t)':eval=frame"),
            *("-ac", "2", "-ar", "44100", "-c:a", "pcm_s16le", str(path)),
        ],
        check=True,
    )
    return path


def run_ingest_bench(minutes: float, json_path: Path) -> dict[str, Any]:
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    stack = api_on_sqlite(work)
    try:
        console.print(f"writing a {minutes:g}-minute WAV ...")
        wav = long_wav(work / "long.wav", minutes)
        start_api(stack, int(stack.api_url.rsplit(":", 1)[1]), log=work / "api.log")
        assert stack.api is not None
        api = psutil.Process(stack.api.pid)
        result = _measure(stack.api_url, api, wav)
    finally:
        stack.stop()
    result.update(
        {
            "minutes": minutes,
            **run_facts(stack.env["BROADCAST_DATABASE_URL"]),
        }
    )
    json_path.write_text(json.dumps(result, indent=2))
    console.print_json(json.dumps(result))
    return result


def _measure(api_url: str, api: psutil.Process, wav: Path) -> dict[str, Any]:
    done = threading.Event()
    health: list[float] = []
    rss: list[int] = []  # the API alone
    rss_all: list[int] = []  # with its ffmpeg children

    def probe_health() -> None:
        with httpx.Client(base_url=api_url, timeout=10) as client:
            while not done.is_set():
                started = time.perf_counter()
                client.get("/healthz").raise_for_status()
                health.append(time.perf_counter() - started)
                done.wait(HEALTH_EVERY_S)

    def sample_memory() -> None:
        while not done.is_set():
            try:
                children = sum(c.memory_info().rss for c in api.children(recursive=True))
            except psutil.NoSuchProcess:
                children = 0  # an ffmpeg ended between listing and reading
            own = api.memory_info().rss
            rss.append(own)
            rss_all.append(own + children)
            done.wait(MEMORY_EVERY_S)

    baseline = api.memory_info().rss
    threads = [threading.Thread(target=probe_health), threading.Thread(target=sample_memory)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    try:
        with wav.open("rb") as f, httpx.Client(base_url=api_url, timeout=1800) as client:
            response = client.post("/api/v1/media", files={"file": (wav.name, f, "audio/wav")})
        wall = time.perf_counter() - started
        response.raise_for_status()
    finally:
        done.set()
        for t in threads:
            t.join()
    media = response.json()
    ordered = sorted(health)
    return {
        "upload_bytes": wav.stat().st_size,
        "wall_s": round(wall, 1),
        "duration_ms": media["duration_ms"],
        "delivered_bytes": media["size"],
        "api_rss_baseline_mb": round(baseline / 2**20),
        "api_peak_rss_mb": round(max(rss) / 2**20),
        "api_and_ffmpeg_peak_rss_mb": round(max(rss_all) / 2**20),
        "health_probes": len(health),
        "health_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "health_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        "health_max_ms": round(ordered[-1] * 1000, 1),
        "health_over_100ms": sum(1 for h in health if h > HEALTH_TARGET_S),
    }
