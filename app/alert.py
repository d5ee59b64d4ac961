"""`broadcast alert`: send one broadcast through the HTTP API and watch it land."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app import api_client

POLL_S = 0.25  # one operator's screen: four small requests a second


@dataclass(frozen=True)
class AlertRequest:
    api_url: str
    areas: list[str]
    clusters: list[str]
    media: Path | None
    stream: str | None
    title: str | None  # None: the warning's
    text: str | None = None  # read aloud when there is no media or stream; on e-boards always
    bulletin: str | None = None  # an approved bulletin (what a normal or priority send needs)
    warning: str | None = None  # a standard warning's id: the clusters hold its clip
    cls: str = "emergency"
    expires_in_s: int = 3600
    timeout_s: float = 120.0
    # The confirmation step: who will hear it, the clip staged on them meanwhile, then a
    # question answered by this (None: send without asking, as a script does).
    confirm: Callable[[dict[str, Any]], bool] | None = None


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        raise SystemExit(f"error {response.status_code}: {message}")
    data: dict[str, Any] = response.json()
    return data


def send_and_watch(request: AlertRequest, console: Console | None = None) -> bool:
    """True when every targeted cluster confirmed before the timeout."""
    console = console or Console()
    with api_client.client(request.api_url, timeout=60) as client:
        body: dict[str, Any] = {
            "class": request.cls,
            "areas": request.areas,
            "clusters": request.clusters,
            "expires_at": _in_seconds(request.expires_in_s),
        }
        if request.title:
            body["title"] = request.title
        if request.text:
            body["text"] = request.text
        if request.bulletin:
            body["bulletin_id"] = request.bulletin
        if request.warning:
            body["warning"] = request.warning
        if request.media is not None:
            with request.media.open("rb") as f:
                media = _check(
                    client.post("/api/v1/media", files={"file": (request.media.name, f)})
                )
            body["media_sha256"] = media["sha256"]
        elif request.stream is not None:
            body["stream_url"] = request.stream
        if request.confirm is not None and not _confirmed(client, body, request.confirm):
            console.print("not sent")
            return False
        started = time.monotonic()
        sent = _check(client.post("/api/v1/broadcasts", json=body))
        total = sent["total"]
        console.print(
            f"[bold]{sent['class']}[/] broadcast [cyan]{sent['id']}[/] {sent['title']!r} "
            f"to {total} clusters "
            f"(areas {', '.join(sent['target_areas']) or '-'}), accepted in "
            f"{time.monotonic() - started:.2f}s"
        )
        state = sent
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            confirmed = progress.add_task("confirmed", total=total)
            played = progress.add_task("played", total=total)
            while time.monotonic() - started < request.timeout_s:
                state = _check(
                    client.get(f"/api/v1/broadcasts/{sent['id']}", params={"unconfirmed_limit": 20})
                )
                progress.update(confirmed, completed=state["confirmed"])
                progress.update(played, completed=state["counts"].get("played", 0))
                if state["confirmed"] == total and state["counts"].get("played", 0) == total:
                    break
                time.sleep(POLL_S)
    _summary(console, state)
    return bool(state["unconfirmed_total"] == 0)


def _confirmed(
    client: httpx.Client, body: dict[str, Any], confirm: Callable[[dict[str, Any]], bool]
) -> bool:
    """Show whom it reaches and ask; the audio is staged on them while the person reads
    (docs/protocol.md 4.2), so the send finds it held."""
    review = {
        key: body[key]
        for key in ("areas", "clusters", "media_sha256", "bulletin_id", "warning", "class")
        if key in body
    }
    return confirm(_check(client.post("/api/v1/broadcasts/reach", json=review)))


def _summary(console: Console, state: dict[str, Any]) -> None:
    table = Table(title="By area (worst first)")
    for column in ("area", "name", "confirmed", "total"):
        table.add_column(column)
    for area in state["areas"][:15]:
        table.add_row(
            area["area_code"], area["area_name"], str(area["confirmed"]), str(area["total"])
        )
    console.print(table)
    console.print(f"states: {state['counts']}")
    if state["unconfirmed_total"]:
        names = ", ".join(u["cluster"] for u in state["unconfirmed"])
        console.print(f"[red]{state['unconfirmed_total']} not confirmed[/]: {names} ...")
    else:
        console.print("[green]every cluster confirmed[/]")


def _in_seconds(seconds: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
