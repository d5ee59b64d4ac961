"""`broadcast loadtest`: the full stack in separate processes, one province-wide emergency.

Measures the control plane against the floor: the same fleet answering one bare MQTT
publish with no control plane in its path.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import threading
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from areas.models import Area
from bench import report
from bench.networks import NETWORKS
from broadcast.models import Broadcast, Delivery
from core.database import create_engine
from core.settings import Settings
from devstack.broker import Broker
from devstack.orchestrate import (
    StackProcesses,
    wait_until,
)
from devstack.province import Province, province_stack
from devstack.synth import tone
from media.models import MediaFile
from wire import protocol
from wire.mqtt_lite import LiteClient
from wire.protocol import Command, CommandKind, Target

PROVINCE = "70"  # old Bình Phước, as the benchmarks seed it (orchestrate.BENCH_SEED)
FLOOR_RUNS = 3
MEDIA_SECONDS = 5
POLL_S = 0.25  # as an operator's screen would; polling is not free for the API
PLAYED_MARGIN_S = 5.0
INLINE_PAD = 61_440  # base64 of a clip at INLINE_MEDIA_MAX_BYTES (46,080 bytes)


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """What every `broadcast loadtest…` command takes: the province's size, where the
    results go, how many simulator processes, which database."""

    clusters: int
    json_path: Path
    processes: int = 2
    database_url: str | None = None  # None: a fresh SQLite file; "postgresql": a fresh one
    edges: int = 0  # edge brokers bridged to the core, holding the clusters
    network: str = "lan"  # the simulated links (bench/networks.py)
    replicas: int = 1  # control-plane processes on the one database and broker


@dataclass(frozen=True, kw_only=True)
class LoadtestOptions(BenchOptions):
    timeout_s: float = 60.0
    runs: int = 1  # emergencies of each kind (fresh clip, cached clip): figures vary run to run
    inline: bool = True  # a clip small enough rides in the command (INLINE_MEDIA_MAX_BYTES)
    # Seconds between the confirmation step (reach with the clip: staged on the clusters)
    # and the send, for each fresh clip; None: sent without a confirmation step.
    stage_s: float | None = None
    # A standard warning (docs/protocol.md 11.1): put in the library, held by every
    # cluster, then aired by its id, `runs` times.
    warning: bool = False
    # The length of each emergency's clip: 5 s of tone is about 40 KB in the default
    # 64 kbit/s rendition (inline); spoken warnings run 20 to 30 s: up to 22.5 s inline in
    # the speech rendition (EMERGENCY_SPEECH_PROFILE), longer ones downloaded or staged.
    clip_s: int = MEDIA_SECONDS


class RssSampler(threading.Thread):
    """Peak resident memory of a process, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.05):
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> float:
        self._stop_event.set()
        return self.peak / 2**20


async def measure_floor(
    host: str, port: int, expected: int, timeout: float, *, pad: int = 0
) -> float:
    """Seconds from one probe published on the province topic to every cluster's ack.
    `pad`: characters of title added, to weigh what the size of a command costs."""
    probe_id = str(uuid.uuid4())
    acked: set[str] = set()
    done = asyncio.Event()

    def on_message(_topic: str, payload: bytes) -> None:
        try:
            ack = protocol.parse_ack(payload)
        except protocol.ProtocolError:
            return
        if ack.cmd == probe_id:
            acked.add(ack.cluster)
            if len(acked) >= expected:
                done.set()

    client = LiteClient(f"floor-{probe_id[:8]}", on_message)
    await client.connect(host, port)
    await client.subscribe([protocol.ACK_FILTER])
    now = datetime.now(UTC)
    command = Command.model_validate(
        {
            "id": probe_id,
            "kind": CommandKind.PROBE,
            "broadcast": f"probe-{probe_id}",
            "class": "emergency",
            "issued_at": now,
            "expires_at": now + timedelta(minutes=1),
            "target": Target(area=PROVINCE),
            "title": "x" * pad,
        }
    )
    started = time.perf_counter()
    # Signed like the control plane's commands (the same environment gives the same key),
    # so the clusters do the same work as for a real command.
    payload = Settings().signer.sign_json(protocol.wire_object(command))
    client.publish(protocol.area_command_topic(PROVINCE), payload, expiry_s=60)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await client.disconnect()
    return time.perf_counter() - started


async def delivery_times(database_url: str, broadcast_id: str) -> list[datetime | None]:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Delivery.delivered_at).where(Delivery.broadcast_id == broadcast_id)
        )
        times = [row[0] for row in rows.all()]
    await engine.dispose()
    return times


async def aired_rendition(database_url: str, broadcast_id: str) -> dict[str, Any]:
    """The rendition the play led with (an emergency's compact speech one, or the
    default) and its size: whether the clip could ride in the command."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(MediaFile.profile, MediaFile.size)
                    .join(Broadcast, Broadcast.aired_sha256 == MediaFile.sha256)
                    .where(Broadcast.id == broadcast_id)
                )
            ).first()
    finally:
        await engine.dispose()
    return {"aired_profile": row[0], "aired_bytes": row[1]} if row else {}


async def delivery_times_by_district(
    database_url: str, broadcast_id: str, trigger: datetime
) -> list[tuple[str, float | None]]:
    """(district, seconds from the request to confirmed or None) of every delivery."""
    return (await times_by_district(database_url, {broadcast_id: trigger}))[broadcast_id]


async def times_by_district(
    database_url: str, triggers: dict[str, datetime]
) -> dict[str, list[tuple[str, float | None]]]:
    """For each broadcast (id: when it was requested), its deliveries' (district, seconds
    from the request to confirmed or None); one query for them all."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(Delivery.broadcast_id, Area.path, Delivery.delivered_at)
                    .join(Area, Area.id == Delivery.area_id)
                    .where(Delivery.broadcast_id.in_(list(triggers)))
                )
            ).all()
            names = dict((await conn.execute(select(Area.code, Area.name))).all())
    finally:
        await engine.dispose()
    found: dict[str, list[tuple[str, float | None]]] = {b: [] for b in triggers}
    for broadcast_id, path, delivered_at in rows:
        codes = path.strip("/").split("/")
        district = codes[1] if len(codes) > 1 else codes[0]
        trigger = triggers[broadcast_id]
        seconds = (delivered_at - trigger).total_seconds() if delivered_at else None
        found[broadcast_id].append((names.get(district, district), seconds))
    return found


def _ingest_idle(api_url: str) -> bool:
    """The floor probes' acks (unknown to the control plane) have all been judged."""
    stats = httpx.get(f"{api_url}/api/v1/ingest", timeout=5).json()
    return not any(stats["backlog"].values())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_province(
    options: BenchOptions, console: Console, **extra: Any
) -> AbstractContextManager[Province]:
    """The province a benchmark's options describe (`extra`: province_stack's others;
    its simulator options come after the network's, so they win where both set one)."""
    network = NETWORKS[options.network]
    if isinstance(options, LoadtestOptions) and not options.inline:
        extra.setdefault("settings", {})["BROADCAST_INLINE_MEDIA_MAX_BYTES"] = "0"
    return province_stack(
        clusters=options.clusters,
        processes=options.processes,
        database_url=options.database_url,
        console=console,
        edges=options.edges,
        replicas=options.replicas,
        simulator_args=(*network.args, *extra.pop("simulator_args", ())),
        online_share=min(network.online_share, extra.pop("online_share", 1.0)),
        **extra,
    )


def run_facts(database_url: str) -> dict[str, Any]:
    """The machine, date and database a result was measured on."""
    return {
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database_url.split(":", 1)[0],
    }


def run_loadtest(options: LoadtestOptions) -> dict[str, Any]:
    console = Console()
    with bench_province(options, console) as province:
        stack, database_url, broker = province.stack, province.database_url, province.broker
        result_floor: dict[str, Any] = {}
        # Over a lossy network some clusters never answer a bare probe: there is no floor.
        floors = [
            asyncio.run(
                measure_floor(broker.host, broker.port, options.clusters, options.timeout_s)
            )
            for _ in range(0 if NETWORKS[options.network].lossy else FLOOR_RUNS)
        ]
        if floors:
            # The same probe as large as a command carrying a clip at the inline bound: what
            # one publication of 61,440 more bytes costs the broker and the fleet.
            assert stack.broker is not None and stack.broker.process is not None
            broker_pid = stack.broker.process.pid
            for pad in (0, INLINE_PAD):
                cpu = _cpu_seconds(broker_pid)
                times = [
                    asyncio.run(
                        measure_floor(
                            broker.host, broker.port, options.clusters, options.timeout_s, pad=pad
                        )
                    )
                    for _ in range(FLOOR_RUNS)
                ]
                label = "floor_inline_sized" if pad else "floor_again"
                result_floor[f"{label}_runs_s"] = [round(t, 3) for t in times]
                result_floor[f"{label}_broker_cpu_ms_per_probe"] = round(
                    (_cpu_seconds(broker_pid) - cpu) * 1000 / FLOOR_RUNS, 1
                )
        wait_until(lambda: _ingest_idle(stack.api_url), timeout=30, what="the API's ingest")
        # Each fresh run a clip never heard before (a new tone): every cluster downloads it.
        # Each fresh run a clip never heard before (a new tone): every cluster downloads it
        # (or takes it from the command, inline). With --stage, as many fresh clips again,
        # each staged at a confirmation step first, interleaved with the unstaged ones so
        # both see the same machine.
        fresh: list[dict[str, Any]] = []
        staged: list[dict[str, Any]] = []
        for _ in range(options.runs):
            for stage_s, runs in ((None, fresh), (options.stage_s, staged)):
                if runs is staged and stage_s is None:
                    continue
                n = len(fresh) + len(staged)
                clip = tone(
                    province.work / f"alert-{n}.mp3", options.clip_s, source=f"sine=f={660 + n}"
                )
                runs.append(
                    _emergency(
                        options,
                        stack,
                        database_url,
                        clip,
                        console,
                        province.edges,
                        stage_s=stage_s,
                    )
                )
        result = fresh[0]  # its CPU, memory and picture; the others' times below
        by_district = result.pop("by_district")
        # The last fresh clip again: every cluster holds it now (a repeated bulletin, a
        # template), so this is the control plane and the broker without the download burst.
        warm = [
            _emergency(options, stack, database_url, clip, console, province.edges)
            for _ in range(options.runs)
        ]
        for key in (
            "trigger_to_all_delivered_s",
            "p50_delivered_s",
            "p99_delivered_s",
            "http_accepted_s",
            "lost",
        ):
            result[f"cached_media_{key}"] = warm[0][key]
        kinds = [("fresh_media", fresh), ("cached_media", warm), ("staged_media", staged)]
        for name, runs in kinds:
            if len(runs) > 1 or (runs and name == "staged_media"):
                times = [r["trigger_to_all_delivered_s"] for r in runs]
                result[f"{name}_runs_all_delivered_s"] = times
                result[f"{name}_median_all_delivered_s"] = statistics.median(
                    t if t is not None else math.inf for t in times
                )
                result[f"{name}_runs_lost"] = [r["lost"] for r in runs]
                result[f"{name}_runs_aired"] = [
                    f"{r.get('aired_profile')} {r.get('aired_bytes')} B" for r in runs
                ]
        if staged:
            times = [r["confirmation_to_all_delivered_s"] for r in staged]
            result["staged_media_runs_confirmation_to_all_delivered_s"] = times
            result["staged_media_median_confirmation_to_all_delivered_s"] = statistics.median(
                t if t is not None else math.inf for t in times
            )
            result["staged_media_published"] = [
                bool((r["staged"] or {}).get("published")) for r in staged
            ]
        if options.warning:
            result.update(_standard_warning(options, stack, database_url, province, console))
        result.update(result_floor)
        result["inline"] = options.inline
        result["stage_s"] = options.stage_s
        result.update(_scheduled(options, stack, database_url, clip, console))
        if floors and result["trigger_to_all_delivered_s"]:
            result["floor_all_acked_s"] = round(statistics.median(floors), 3)
            result["floor_runs_s"] = [round(f, 3) for f in floors]
            result["control_plane_over_floor"] = round(
                result["trigger_to_all_delivered_s"] / result["floor_all_acked_s"], 2
            )
    result["network"] = options.network
    result.update(run_facts(database_url))
    options.json_path.write_text(json.dumps(result, indent=2))
    report.write(result, report.group(by_district), options.json_path)
    _report(console, result, options.json_path)
    console.print(f"report: {options.json_path.with_suffix('.html')} and .png")
    return result


WARNING_ID = "loadtest-flood"


def _standard_warning(
    options: LoadtestOptions,
    stack: StackProcesses,
    database_url: str,
    province: Province,
    console: Console,
) -> dict[str, Any]:
    """A standard warning (docs/protocol.md 11.1): a clip no cluster has heard put in the
    library; how long until every cluster took the document listing it; the province's
    self-test, which checks each cluster holds it; then the warning aired by its id, as
    an emergency, `runs` times (each cluster should find it held: no download)."""
    clip = tone(province.work / "warning.mp3", options.clip_s, source="sine=f=523")
    deadline = time.monotonic() + options.timeout_s
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        with clip.open("rb") as f:
            sha = client.post("/api/v1/media", files={"file": ("warning.mp3", f)}).json()["sha256"]
        started = time.perf_counter()
        client.put(
            f"/api/v1/warnings/{WARNING_ID}",
            json={"title": "Load test: flood, move to high ground", "media_sha256": sha},
        ).raise_for_status()
        # The clusters behind the new document: seen behind, then none (a push and every
        # confirmation between two polls would be missed: then the self-test still checks).
        seen_behind, taken_s = False, None
        while time.monotonic() < deadline:
            behind = client.get("/api/v1/schedules/out-of-date", params={"area": PROVINCE})
            behind.raise_for_status()
            if behind.json():
                seen_behind = True
            elif seen_behind:
                taken_s = time.perf_counter() - started
                break
            time.sleep(POLL_S)
        operation = client.post("/api/v1/self-test").json()["operation_id"]
        report: dict[str, Any] = {}
        while time.monotonic() < deadline:
            report = client.get("/api/v1/self-test/report", params={"area": PROVINCE}).json()
            failures = sum(len(c["clusters"]) for c in report["communes"])
            if report["operation_id"] == operation and report["passed"] == report["total"]:
                break
            if (
                report["operation_id"] == operation
                and failures
                and not any(
                    f["reason"] == "no answer" for c in report["communes"] for f in c["clusters"]
                )
            ):
                break  # every cluster answered, and some failed: reported below
            time.sleep(POLL_S)
        held_s = time.perf_counter() - started
        reasons = sorted({f["reason"] for c in report.get("communes", []) for f in c["clusters"]})
    console.print(
        f"standard warning: documents taken in {taken_s or 0:.2f} s, self-test passed "
        f"{report.get('passed')} of {options.clusters} {reasons or ''}"
    )
    runs = [
        _emergency(options, stack, database_url, None, console, [], body={"warning": WARNING_ID})
        for _ in range(options.runs)
    ]
    times = [r["trigger_to_all_delivered_s"] for r in runs]
    return {
        "warning_documents_taken_s": round(taken_s, 3) if taken_s is not None else None,
        "warning_self_test_passed": report.get("passed"),
        "warning_self_test_failures": reasons,
        "warning_held_checked_s": round(held_s, 3),
        "warning_runs_all_delivered_s": times,
        "warning_median_all_delivered_s": statistics.median(
            t if t is not None else math.inf for t in times
        ),
        "warning_runs_lost": [r["lost"] for r in runs],
        "warning_runs_cpu_api_ms_per_1000_acks": [r["cpu_api_ms_per_1000_acks"] for r in runs],
    }


SCHEDULE_LEAD_S = 5  # the slot is this far ahead when the schedule is saved
EDITOR = {"x-actor": "loadtest-editor", "x-role": "editor"}


def _scheduled(
    options: LoadtestOptions,
    stack: StackProcesses,
    database_url: str,
    media: Path,
    console: Console,
) -> dict[str, Any]:
    """A province-wide scheduled bulletin: how late after its slot the scheduler fires it,
    and how long until every cluster confirmed it."""
    from zoneinfo import ZoneInfo

    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        with media.open("rb") as f:
            sha = client.post("/api/v1/media", files={"file": ("news.mp3", f)}).json()["sha256"]
        bulletin = client.post(
            "/api/v1/bulletins", json={"title": "Load test: news", "media_sha256": sha}
        ).json()
        client.post(f"/api/v1/bulletins/{bulletin['id']}/submit").raise_for_status()
        client.post(
            f"/api/v1/bulletins/{bulletin['id']}/approve", headers=EDITOR
        ).raise_for_status()
        slot = (datetime.now(UTC) + timedelta(seconds=SCHEDULE_LEAD_S)).replace(microsecond=0)
        local = slot.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).replace(tzinfo=None)
        schedule = client.post(
            "/api/v1/schedules",
            json={
                "title": "Load test: scheduled news",
                "bulletin_id": bulletin["id"],
                "starts_local": local.isoformat(),
                "areas": [PROVINCE],
                "accept_conflicts": True,
            },
        )
        schedule.raise_for_status()
        deadline = time.monotonic() + SCHEDULE_LEAD_S + options.timeout_s
        firings: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not firings:
            firings = client.get(f"/api/v1/schedules/{schedule.json()['id']}/firings").json()
            time.sleep(POLL_S)
        if not firings:
            return {"schedule_fired": False}
        broadcast_id = firings[0]["broadcast_id"]
        broadcast = client.get(f"/api/v1/broadcasts/{broadcast_id}").json()
        while time.monotonic() < deadline and broadcast["confirmed"] < options.clusters:
            time.sleep(POLL_S)
            broadcast = client.get(
                f"/api/v1/broadcasts/{broadcast_id}", params={"unconfirmed_limit": 0}
            ).json()
    created = datetime.fromisoformat(broadcast["created_at"])
    times = [t for t in asyncio.run(delivery_times(database_url, broadcast_id)) if t]
    console.print(
        f"scheduled bulletin fired {(created - slot).total_seconds():.2f} s after its slot"
    )
    return {
        "schedule_fire_delay_s": round((created - slot).total_seconds(), 3),
        "schedule_outcome": firings[0]["outcome"],
        "schedule_slot_to_all_delivered_s": round((max(times) - slot).total_seconds(), 3)
        if times
        else None,
        "schedule_lost": options.clusters - len(times),
    }


def _start_profiler(pid: int) -> subprocess.Popen[bytes] | None:
    """With LOADTEST_PROFILE=path, sample the API with py-spy for the send's first seconds
    (LOADTEST_PROFILE_S, 3 by default; the whole send to every cluster played takes 5 s at
    1,639 clusters): only while it holds the GIL, so the database thread waiting for work and
    the event loop waiting on its sockets are not counted as busy."""
    path = os.environ.get("LOADTEST_PROFILE")
    if not path:
        return None
    seconds = os.environ.get("LOADTEST_PROFILE_S", "3")
    sampler = ["py-spy", "record", "--gil", "-d", seconds, "-r", "500", "-f", "raw"]
    proc = subprocess.Popen(
        [*sampler, "-p", str(pid), "-o", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)  # py-spy attaches
    return proc


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (the simulator runs one child per shard)."""
    try:
        process = psutil.Process(pid)
        total = sum(process.cpu_times()[:2])
        for child in process.children(recursive=True):
            total += sum(child.cpu_times()[:2])
        return float(total)
    except psutil.Error:
        return 0.0


def _emergency(
    options: LoadtestOptions,
    stack: StackProcesses,
    database_url: str,
    media: Path | None,
    console: Console,
    edges: list[Broker],
    *,
    stage_s: float | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`stage_s`: the confirmation step first (reach, with the clip staged on the
    clusters), then the send this many seconds later, as a duty officer reads and presses.
    `body`: what the request names instead of an uploaded `media` (a standard warning)."""
    assert stack.api is not None and stack.simulator is not None and stack.broker is not None
    assert stack.broker.process is not None
    parts = {
        "api": stack.api.pid,
        "simulator": stack.simulator.pid,
        "broker": stack.broker.process.pid,
        **{f"edge{k}": e.process.pid for k, e in enumerate(edges) if e.process is not None},
    }
    sampler = RssSampler(stack.api.pid)
    sampler.start()
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        names: dict[str, Any] = dict(body or {})
        if media is not None:
            with media.open("rb") as f:
                names["media_sha256"] = client.post(
                    "/api/v1/media", files={"file": ("alert.mp3", f)}
                ).json()["sha256"]
        # CPU from the request on: the clip's transcoding (ffmpeg, a child) is not the send.
        cpu_before = {name: _cpu_seconds(pid) for name, pid in parts.items()}
        request = {"title": "Load test: province-wide emergency", "areas": [PROVINCE], **names}
        acks_before = client.get("/api/v1/ingest").json()["counts"].get("acks_received", 0)
        confirmation: datetime | None = None
        staged: dict[str, Any] | None = None
        if stage_s is not None:
            confirmation = datetime.now(UTC)
            reach = client.post("/api/v1/broadcasts/reach", json={"areas": [PROVINCE], **names})
            reach.raise_for_status()
            staged = reach.json()["staged"]
            time.sleep(max(0.0, stage_s - (datetime.now(UTC) - confirmation).total_seconds()))
        profiler = _start_profiler(stack.api.pid)
        trigger = datetime.now(UTC)
        started = time.perf_counter()
        response = client.post("/api/v1/broadcasts", json=request)
        response.raise_for_status()
        accepted_s = time.perf_counter() - started
        broadcast_id = response.json()["id"]
        state = _watch(client, broadcast_id, options, started, console)
        all_played_s = time.perf_counter() - started
        ingest_report = client.get("/api/v1/ingest").json()
        ingest = ingest_report["batches"]
        acks = ingest_report["counts"].get("acks_received", 0) - acks_before
    peak_rss = sampler.stop()
    simulator_rss_kb = _rss_kb(stack.simulator.pid)
    if profiler is not None:
        profiler.wait()
    cpu = {
        f"cpu_{name}_s": round(_cpu_seconds(pid) - cpu_before[name], 3)
        for name, pid in parts.items()
    }
    by_district = asyncio.run(delivery_times_by_district(database_url, broadcast_id, trigger))
    aired = asyncio.run(aired_rendition(database_url, broadcast_id))
    delays = [t for _, t in by_district if t is not None]
    delivered = len(delays)
    lead = (trigger - confirmation).total_seconds() if confirmation else None
    return {
        "confirmation_to_all_delivered_s": round(max(delays) + lead, 3)
        if delays and lead is not None
        else None,
        "staged": staged,
        "clusters": options.clusters,
        "delivered": delivered,
        "played": state.get("counts", {}).get("played", 0),
        "lost": options.clusters - delivered,
        "http_accepted_s": round(accepted_s, 3),
        "trigger_to_all_delivered_s": round(max(delays), 3) if delays else None,
        "p50_delivered_s": round(percentile(delays, 0.5), 3) if delays else None,
        "p99_delivered_s": round(percentile(delays, 0.99), 3) if delays else None,
        "trigger_to_all_played_s": round(all_played_s, 3),
        "media_seconds": options.clip_s,
        **aired,
        "api_peak_rss_mb": round(peak_rss, 1),
        "simulator_processes": options.processes,
        **cpu,
        "acks": acks,
        "cpu_api_ms_per_1000_acks": round(cpu["cpu_api_s"] * 1e6 / acks, 1) if acks else None,
        "edge_brokers": len(edges),
        "cpu_broker_ms_per_1000_acks": round(cpu["cpu_broker_s"] * 1e6 / acks, 1) if acks else None,
        "api_peak_rss_kb_per_cluster": round(peak_rss * 1024 / options.clusters, 1),
        "simulator_rss_kb_per_cluster": round(simulator_rss_kb / options.clusters, 1),
        "by_district": by_district,
        "ingest_batches": ingest,
        "ingest_counts": ingest_report["counts"],
    }


def _watch(
    client: httpx.Client,
    broadcast_id: str,
    options: LoadtestOptions,
    started: float,
    console: Console,
) -> dict[str, Any]:
    """Poll the broadcast until every cluster played it (or the timeout), drawing its
    progress: confirmed and played against the province."""
    state: dict[str, Any] = {}
    deadline = started + options.timeout_s
    all_confirmed: float | None = None
    with progress_bars(console) as progress:
        confirmed = progress.add_task("confirmed", total=options.clusters)
        played = progress.add_task("played", total=options.clusters)
        while time.perf_counter() < deadline:
            state = client.get(
                f"/api/v1/broadcasts/{broadcast_id}", params={"unconfirmed_limit": 0}
            ).json()
            progress.update(confirmed, completed=state["confirmed"])
            progress.update(played, completed=state["counts"].get("played", 0))
            if state["counts"].get("played", 0) == options.clusters:
                break
            if state["confirmed"] == options.clusters:
                # Over a lossy network a lost `played` is asked for again only once the
                # clip's length and the played grace have passed: stop past a margin.
                all_confirmed = all_confirmed or time.perf_counter()
                if time.perf_counter() - all_confirmed > options.clip_s + PLAYED_MARGIN_S:
                    break
            time.sleep(POLL_S)
    return state


def progress_bars(console: Console) -> Progress:
    """Bars that count up to a total, with the time so far; gone when done."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _rss_kb(pid: int) -> float:
    """Resident memory of a process and its children (the simulator's shards), in KiB."""
    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in members)) / 1024
    except psutil.Error:
        return 0.0


def _report(console: Console, result: dict[str, Any], path: Path) -> None:
    table = Table(title=f"load test: {result['clusters']} clusters ({path})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if not isinstance(value, dict | list):
            table.add_row(key, str(value))
    console.print(table)
