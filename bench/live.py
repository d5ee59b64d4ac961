"""`broadcast loadtest-live`: live voice to a whole province, in separate processes.

Mouth to speaker: the officer's audio is a WAV read in real time by ffmpeg (`-re`) and
sent as WebM/Opus chunks over the session's WebSocket (`live/sender.py`, what the
CLI does; MediaRecorder makes the same chunks). The officer's sample at time X entered
the "microphone" at the sender's start + X; the session tells where in the stream it put
that sample (`resumes_ms`); each simulated cluster notes when it received each stream
position (`--live-report`). Latency = received - entered, per marker (one every
MARKER_EVERY_S), per cluster. The start-up of the sender's ffmpeg is counted in it, and
a real device adds its own decoder's buffer. CPU: the API process and its ffmpeg
children over the minutes of audio.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from bench.loadtest import run_facts
from devstack.orchestrate import wait_until
from devstack.province import province_stack
from devstack.synth import tone
from live import sender as live_sender

PROVINCE = "70"  # old Bình Phước, as the benchmarks seed it
MARKER_EVERY_S = 5.0
FIRST_MARKER_S = 1.0
FRAME_MS = 24  # an MP3 frame: the sample sits somewhere in the frame that carries it


def _cpu_s(pid: int) -> float:
    """CPU seconds of a process and its living children (the API's ffmpegs)."""
    total = 0.0
    process = psutil.Process(pid)
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _counts(http: httpx.Client, broadcast_id: str) -> dict[str, Any]:
    data: dict[str, Any] = http.get(
        f"/api/v1/broadcasts/{broadcast_id}", params={"unconfirmed_limit": 0}
    ).json()
    return data


def run_live_bench(
    *,
    clusters: int,
    processes: int,
    seconds: float,
    json_path: Path,
    database_url: str | None = None,
) -> dict[str, Any]:
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="live-bench-"))
    report = work / "positions.jsonl"
    voice = tone(work / "voice.wav", seconds, source="sine=frequency=500", sample_rate=48000)
    with province_stack(
        clusters=clusters,
        processes=processes,
        database_url=database_url,
        console=console,
        simulator_args=("--live-report", str(report)),
    ) as province:
        stack = province.stack
        assert stack.api is not None
        api_pid = stack.api.pid
        simulator_pid = stack.simulator.pid if stack.simulator is not None else None
        with httpx.Client(base_url=stack.api_url, timeout=60) as http:
            started = http.post(
                "/api/v1/live",
                json={"title": "Loadtest", "class": "emergency", "areas": [PROVINCE]},
            )
            started.raise_for_status()
            session = started.json()
            broadcast_id = session["broadcast_id"]
            t0 = time.monotonic()
            wait_until(
                lambda: _counts(http, broadcast_id)["counts"].get("playing", 0) >= clusters,
                timeout=120,
                what="every cluster playing the live stream",
                every=0.25,
            )
            all_playing_s = time.monotonic() - t0
            console.print(f"{clusters} clusters playing after {all_playing_s:.2f} s; speaking")
            resumes: list[list[float]] = []
            stop = threading.Event()

            def watch() -> None:
                with httpx.Client(base_url=stack.api_url, timeout=10) as watcher:
                    while not stop.is_set():
                        state = watcher.get(f"/api/v1/live/{broadcast_id}").json()
                        if state.get("status") == "live":
                            resumes[:] = state["resumes_ms"]
                        stop.wait(0.5)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            cpu_api_0 = _cpu_s(api_pid)
            cpu_sim_0 = _cpu_s(simulator_pid) if simulator_pid else 0.0
            url = live_sender.ws_url(stack.api_url, session["audio_path"])
            sent = asyncio.run(live_sender.send(url, str(voice), end=False, stop_after_s=seconds))
            cpu_api = _cpu_s(api_pid) - cpu_api_0
            cpu_sim = (_cpu_s(simulator_pid) - cpu_sim_0) if simulator_pid else 0.0
            stop.set()
            watcher.join()
            ended = http.post(f"/api/v1/live/{broadcast_id}/end").json()
            wait_until(
                lambda: _counts(http, broadcast_id)["counts"].get("played", 0) >= clusters,
                timeout=60,
                what="every cluster played",
                every=0.25,
            )
            wait_until(
                lambda: report.exists() and len(report.read_text().splitlines()) >= clusters,
                timeout=30,
                what="every cluster's positions",
            )
    results = _latencies(report, broadcast_id, resumes, sent.started_at, seconds)
    results.update(
        run_facts(database_url or "sqlite"),
        clusters=clusters,
        processes=processes,
        audio_s=seconds,
        all_playing_s=round(all_playing_s, 2),
        api_cpu_s=round(cpu_api, 2),
        api_cpu_s_per_audio_minute=round(cpu_api / (seconds / 60), 2),
        simulator_cpu_s=round(cpu_sim, 2),
        gaps_ms=ended.get("gaps_ms"),
        recorded_ms=ended.get("recorded_ms"),
        resumes_ms=resumes,
    )
    json_path.write_text(json.dumps(results, indent=2))
    table = Table(title=f"Live voice to {clusters} clusters, {seconds:g} s of audio")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in (
        "latency_median_s",
        "latency_worst_cluster_s",
        "latency_worst_sample_s",
        "markers",
        "api_cpu_s_per_audio_minute",
        "simulator_cpu_s",
        "all_playing_s",
        "gaps_ms",
    ):
        table.add_row(key, str(results.get(key)))
    console.print(table)
    return results


def _latencies(
    report: Path, broadcast_id: str, resumes: list[list[float]], started_at: float, seconds: float
) -> dict[str, Any]:
    """Per cluster, the median over the markers of (received - spoken); the fleet's
    median of those, its worst cluster, and the worst single marker anywhere."""
    markers = []
    x = FIRST_MARKER_S * 1000
    while x < seconds * 1000 - 500:
        stream = None
        for officer_ms, stream_ms in resumes:
            if officer_ms <= x:
                stream = stream_ms + (x - officer_ms)
        if stream is not None:
            markers.append((x, stream + FRAME_MS))
        x += MARKER_EVERY_S * 1000
    per_cluster: list[float] = []
    worst = 0.0
    for line in report.read_text().splitlines():
        row = json.loads(line)
        if row["broadcast"] != broadcast_id:
            continue
        positions = row["positions"]
        seen = []
        for officer_ms, stream_ms in markers:
            arrived = next((t for t, p in positions if p >= stream_ms), None)
            if arrived is not None:
                seen.append(arrived - (started_at + officer_ms / 1000))
        if seen:
            per_cluster.append(statistics.median(seen))
            worst = max(worst, *seen)
    if not per_cluster:
        return {"markers": len(markers), "clusters_measured": 0}
    return {
        "markers": len(markers),
        "clusters_measured": len(per_cluster),
        "latency_median_s": round(statistics.median(per_cluster), 3),
        "latency_worst_cluster_s": round(max(per_cluster), 3),
        "latency_worst_sample_s": round(worst, 3),
    }
