"""`broadcast loadtest-flood`: a flood of malformed device messages on the documented
device topics (issue 20), while a fleet of simulated clusters is online.

What must hold: every bad message is refused and counted on its own, the API stays
responsive (`/healthz` probed every 50 ms), its memory does not keep growing (a second
flood), every cluster stays online (its real heartbeats applied between the junk), and an
emergency afterwards reaches every cluster.

The junk, in rotation: random bytes, truncated JSON, wrong types, numbers past 64 bits,
NaN and Infinity, 250 KB strings, deeply nested JSON, acknowledgements for commands that
do not exist, acknowledgements and heartbeats that name another cluster than their topic,
topics of clusters that are not registered.
"""

from __future__ import annotations

import asyncio
import json
import random
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
from devstack.orchestrate import demo_api_on_sqlite, online_count, start_simulator
from devstack.synth import tone
from wire import protocol
from wire.mqtt_lite import LiteClient

HEALTH_EVERY_S = 0.05
BIG = 250 * 1024  # under the broker's max_packet_size (256 KiB)
IN_FLIGHT = 500  # QoS 1 publishes outstanding at once
REFUSALS = ("malformed", "topic_mismatch", "unknown_command", "unknown_device")


def junk(n: int, codes: list[str], rng: random.Random) -> tuple[str, bytes]:
    """The n-th malformed message: (topic, payload)."""
    code = codes[n % len(codes)]
    other = codes[(n + 1) % len(codes)]
    at = "2026-12-04T00:00:00.000Z"
    kinds: list[tuple[str, bytes]] = [
        (protocol.heartbeat_topic(code), rng.randbytes(rng.randint(1, 400))),
        (protocol.ack_topic(code), b'{"v":1,"cmd":"x","broadcast":"y","clus'),
        (
            protocol.heartbeat_topic(code),
            json.dumps({"v": 1, "cluster": code, "at": {"t": 5}}).encode(),
        ),
        (
            protocol.heartbeat_topic(code),
            f'{{"v":1,"cluster":"{code}","at":"{at}","rssi":9223372036854775808}}'.encode(),
        ),
        (
            protocol.heartbeat_topic(code),
            f'{{"v":1,"cluster":"{code}","at":"{at}","volume":NaN,"temp_c":Infinity}}'.encode(),
        ),
        (protocol.status_topic(code), b'{"v":1,"online":false,"cluster":"' + b"x" * 5000 + b'"}'),
        (protocol.heartbeat_topic(code), b"[" * 5000 + b"]" * 5000),
        (
            protocol.ack_topic(code),
            json.dumps(
                {"v": 1, "cmd": f"nope-{n}", "broadcast": "none", "cluster": code}
                | {"stage": "played", "at": at}
            ).encode(),
        ),
        (
            protocol.ack_topic(code),
            json.dumps(
                {"v": 1, "cmd": "x", "broadcast": "y", "cluster": other}
                | {"stage": "played", "at": at}
            ).encode(),
        ),
        (protocol.heartbeat_topic(f"99999-{n % 997}"), b'{"v":1}'),
        (protocol.heartbeat_topic(code), json.dumps({"v": "1", "cluster": [code]}).encode()),
        (
            protocol.heartbeat_topic(code),
            f'{{"v":1,"cluster":"{code}","at":"0000-00-00"}}'.encode(),
        ),
    ]
    if n % 500 == 0:  # 0.2 % of the flood: 250 KB payloads
        return protocol.heartbeat_topic(code), b'{"v":1,"note":"' + b"a" * BIG + b'"}'
    return kinds[n % len(kinds)]


async def _publish(host: str, port: int, codes: list[str], count: int, seed: int) -> float:
    """Publish `count` junk messages at QoS 1 as fast as the broker takes them; seconds."""
    rng = random.Random(seed)
    client = LiteClient(f"flood-{seed}", lambda _t, _p: None)
    await client.connect(host, port)
    started = time.perf_counter()
    pending: list[asyncio.Future[None]] = []
    for n in range(count):
        topic, payload = junk(n, codes, rng)
        future = client.publish(topic, payload, qos=1)
        if future is not None:
            pending.append(future)
        if len(pending) >= IN_FLIGHT:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - started
    await client.disconnect()
    return elapsed


def run_flood_bench(messages: int, clusters: int, json_path: Path) -> dict[str, Any]:
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="flood-bench-"))
    stack = demo_api_on_sqlite(work)
    try:
        start_simulator(
            stack, "--clusters", str(clusters), expected=clusters, log=work / "simulator.log"
        )
        assert stack.api is not None and stack.broker is not None
        api = psutil.Process(stack.api.pid)
        with httpx.Client(base_url=stack.api_url, timeout=60) as client:
            codes = [
                c["code"]
                for c in client.get(
                    "/api/v1/clusters", params={"online": "true", "limit": clusters}
                ).json()["items"]
            ]
            rss_before = api.memory_info().rss / 2**20
            rounds = []
            for round_no in (1, 2):
                console.print(f"flood {round_no}: {messages:,} malformed messages ...")
                rounds.append(_flood_round(stack.api_url, stack.broker, codes, messages, round_no))
                rounds[-1]["api_rss_mb_after"] = round(api.memory_info().rss / 2**20, 1)
                rounds[-1]["online_after"] = online_count(stack.api_url)
            console.print("an emergency to every cluster ...")
            emergency = _emergency(client, work, clusters)
            ingest = client.get("/api/v1/ingest").json()
    finally:
        stack.stop()
    result = {
        "messages_per_flood": messages,
        "clusters_online": clusters,
        "api_rss_mb_before": round(rss_before, 1),
        "floods": rounds,
        "emergency_after": emergency,
        "ingest_counts": ingest["counts"],
        **run_facts(stack.env["BROADCAST_DATABASE_URL"]),
    }
    json_path.write_text(json.dumps(result, indent=2))
    console.print_json(json.dumps(result))
    return result


def _flood_round(
    api_url: str, broker: Any, codes: list[str], messages: int, seed: int
) -> dict[str, Any]:
    before = httpx.get(f"{api_url}/api/v1/ingest", timeout=10).json()["counts"]
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get(f"{api_url}/healthz")
                latencies.append(time.perf_counter() - started)
                stop.wait(HEALTH_EVERY_S)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    started = time.perf_counter()
    publish_s = asyncio.run(_publish(broker.host, broker.port, codes, messages, seed))
    # The API has taken them all when its counters stop moving for a second.
    last, stable = -1, 0
    while stable < 4:
        time.sleep(0.25)
        counts = httpx.get(f"{api_url}/api/v1/ingest", timeout=10).json()["counts"]
        total = sum(counts.values())
        stable, last = (stable + 1 if total == last else 0), total
    taken_s = time.perf_counter() - started
    stop.set()
    prober.join()
    after = httpx.get(f"{api_url}/api/v1/ingest", timeout=10).json()["counts"]
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    refused = sum(delta.get(k, 0) for k in REFUSALS)
    return {
        "refused": refused,
        "refused_of_sent": f"{refused}/{messages}",
        "publish_s": round(publish_s, 2),
        "rate_per_s": round(messages / publish_s),
        "all_counted_within_s": round(taken_s - 1.0, 1),  # less the second of stillness
        "healthz_s": {
            "probes": len(latencies),
            "median": round(statistics.median(latencies), 4),
            "max": round(max(latencies), 4),
        },
        "counted": delta,
    }


def _emergency(client: httpx.Client, work: Path, clusters: int) -> dict[str, Any]:
    clip = tone(work / "alert.mp3", 5, sample_rate=16000, bitrate="16k")
    with clip.open("rb") as f:
        sha = client.post("/api/v1/media", files={"file": ("alert.mp3", f)}).json()["sha256"]
    province = client.get("/api/v1/areas", params={"level": "province"}).json()["items"][0]["code"]
    started = time.perf_counter()
    sent = client.post(
        "/api/v1/broadcasts",
        json={"title": "After the flood", "areas": [province], "media_sha256": sha},
    )
    sent.raise_for_status()
    broadcast_id = sent.json()["id"]
    deadline = started + 60
    played = 0
    while time.perf_counter() < deadline:
        counts = client.get(f"/api/v1/broadcasts/{broadcast_id}").json()["counts"]
        played = counts.get("played", 0)
        if played >= clusters:
            break
        time.sleep(0.05)
    return {
        "played": played,
        "of": clusters,
        "trigger_to_all_played_s": round(time.perf_counter() - started, 3),
    }
