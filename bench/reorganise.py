"""`broadcast loadtest-reorganise`: the reform of 1 July 2025 applied to old Bình Phước's
whole register (1,639 clusters, 25 e-boards) while its simulated fleet is online
(issue 22): how long the plan and its application take, an emergency to the new
province sent the moment the register has moved (every device still on its old topics),
how long until every device has confirmed its new areas, and an emergency after."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from bench.loadtest import run_facts
from devstack.orchestrate import demo_api_on_sqlite, start_simulator, wait_until
from devstack.synth import tone

EFFECTIVE = "2025-07-01"
NEW_PROVINCE = "75"


def run_reorganise_bench(json_path: Path, processes: int) -> dict[str, Any]:
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="reorganise-bench-"))
    stack = demo_api_on_sqlite(work)
    database = stack.env["BROADCAST_DATABASE_URL"].split("///", 1)[1]
    try:
        with httpx.Client(base_url=stack.api_url, timeout=120) as client:
            fleet = len(client.get("/api/v1/clusters/provisioning").json())
            console.print(f"{fleet} simulated clusters in {processes} processes ...")
            start_simulator(
                stack, "--processes", str(processes), expected=fleet, log=work / "sim.log"
            )
            clip = tone(work / "alert.mp3", 5, sample_rate=16000, bitrate="16k")
            with clip.open("rb") as f:
                sha = client.post("/api/v1/media", files={"file": ("a.mp3", f)}).json()["sha256"]

            began = time.perf_counter()
            plan = _reorganise(client, dry_run=True)
            dry_run_s = time.perf_counter() - began
            began = time.perf_counter()
            applied = _reorganise(client, dry_run=False)
            apply_s = time.perf_counter() - began
            console.print(f"applied in {apply_s:.2f} s: {applied['summary']}")
            during = _emergency(client, sha, "during the change")
            console.print(f"mid-change emergency: {during}")
            began = time.perf_counter()
            wait_until(
                lambda: _moving(database) == 0,
                timeout=300,
                what="every device confirmed its new areas",
                every=0.1,
            )
            confirmed_s = time.perf_counter() - began
            after = _emergency(client, sha, "after the change")
            console.print(f"after: {after}")
    finally:
        stack.stop()
    result = {
        "clusters_and_eboards": fleet,
        "plan": plan["summary"],
        "dry_run_s": round(dry_run_s, 3),
        "apply_s": round(apply_s, 3),
        "emergency_during": during,
        "all_devices_on_new_topics_s_after_apply": round(confirmed_s + during["all_s"], 3),
        "emergency_after": after,
        **run_facts(stack.env["BROADCAST_DATABASE_URL"]),
    }
    json_path.write_text(json.dumps(result, indent=2))
    console.print_json(json.dumps(result))
    return result


def _reorganise(client: httpx.Client, *, dry_run: bool) -> dict[str, Any]:
    response = client.post(
        "/api/v1/areas/reorganise", json={"effective": EFFECTIVE, "dry_run": dry_run}
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def _emergency(client: httpx.Client, sha: str, title: str) -> dict[str, Any]:
    began = time.perf_counter()
    sent = client.post(
        "/api/v1/broadcasts",
        json={"title": title, "areas": [NEW_PROVINCE], "media_sha256": sha},
    )
    sent.raise_for_status()
    broadcast = sent.json()
    confirmed, deadline = 0, began + 120
    while time.perf_counter() < deadline:
        confirmed = client.get(f"/api/v1/broadcasts/{broadcast['id']}").json()["confirmed"]
        if confirmed >= broadcast["total"]:
            break
        time.sleep(0.05)
    return {
        "confirmed": confirmed,
        "of": broadcast["total"],
        "named_on_their_own_topic": len(broadcast["target_clusters"]),
        "all_s": round(time.perf_counter() - began, 3),
    }


def _moving(database: str) -> int:
    with sqlite3.connect(database) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM clusters WHERE moving_from IS NOT NULL"
        ).fetchone()
    return int(count)
