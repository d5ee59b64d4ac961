"""`broadcast health`, `broadcast cluster show`, `broadcast cluster cmd`: the technician's
view from a terminal (or a phone's SSH app), through the HTTP API like any client."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from app import api_client
from app.alert import _check

POLL_S = 0.5
# `broadcast cluster cmd CODE volume 70` -> (operation kind, parameter name, its type)
COMMANDS: dict[str, tuple[str, str | None, type]] = {
    "volume": ("set_volume", "volume", int),
    "amp-on": ("amplifier", None, bool),
    "amp-off": ("amplifier", None, bool),
    "reboot": ("reboot", None, bool),
    "test-tone": ("test_tone", "seconds", int),
    "fm": ("tune_fm", "frequency_khz", int),
    "status": ("report_status", None, bool),
}


def _json(response: httpx.Response) -> Any:
    """The answer, or exit with the API's own error message."""
    if response.is_error:
        _check(response)
    return response.json()


def _when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%d/%m %H:%M:%S")


def show_health(api_url: str, area: str, console: Console) -> None:
    with api_client.client(api_url) as client:
        rows = _json(client.get("/api/v1/health", params={"area": area}))
        alarms = _json(client.get("/api/v1/alarms", params={"area": area, "limit": 20}))
    table = Table(title=f"Health of {area} (worst first)")
    for column in ("area", "name", "total", "online", "offline", "faulty", "battery"):
        table.add_column(column, justify="right" if column not in ("area", "name") else "left")
    for i, row in enumerate(rows):
        style = "bold" if i == 0 else ("red" if row["not_working"] else None)
        table.add_row(
            row["area_code"],
            row["name"],
            str(row["total"]),
            str(row["online"]),
            str(row["offline"]),
            str(row["faulty"]),
            str(row["on_battery"]),
            style=style,
        )
    console.print(table)
    if alarms:
        listed = Table(title="Open alarms (newest first)")
        for column in ("cluster", "alarm", "since", "detail", "acknowledged"):
            listed.add_column(column)
        for alarm in alarms:
            listed.add_row(
                alarm["cluster"],
                alarm["kind"],
                _when(alarm["raised_at"]),
                alarm["detail"],
                alarm["acknowledged_by"] or "-",
            )
        console.print(listed)
    else:
        console.print("no open alarms")


def show_cluster(api_url: str, code: str, console: Console) -> None:
    with api_client.client(api_url) as client:
        page = _check(client.get(f"/api/v1/clusters/{code}/health", params={"history": 8}))
    state = (
        "[green]online[/]"
        if page["online"]
        else f"[red]offline since {_when(page['offline_since'])}[/]"
    )
    console.print(
        f"[bold]{page['cluster']}[/] {page['name']}: {state}, last seen {_when(page['last_seen_at'])}"
    )
    t = page["telemetry"]
    if t is None:
        console.print("no heartbeat received yet")
    else:
        facts = Table(show_header=False)
        facts.add_column()
        facts.add_column()
        for label, value in (
            ("playing", t["playing"] or "-"),
            ("volume", t["volume"]),
            ("power", f"{t['power'] or '-'} {t['supply_v'] or ''} V"),
            ("amplifier", f"{'on' if t['amp_on'] else 'off'}, {t['amp_temp_c']} °C"),
            ("speaker faults", ", ".join(map(str, t["speaker_faults"])) or "none"),
            ("relay", t["relay_trip"] or "ok"),
            ("signal", f"{t['rssi']} dBm"),
            ("clock offset", f"{t['clock_offset_s']:+.1f} s"),
            ("firmware", t["firmware"]),
        ):
            facts.add_row(label, str(value))
        console.print(facts)
    for alarm in page["alarms"]:
        console.print(
            f"[red]alarm[/] {alarm['kind']}: {alarm['detail']} (since {_when(alarm['raised_at'])})"
        )


def send_command(
    api_url: str, code: str, command: str, value: int | None, console: Console, timeout_s: float
) -> bool:
    """Send one operation to one cluster and wait for its answer; True if done."""
    if command not in COMMANDS:
        raise SystemExit(f"unknown command {command!r}: one of {', '.join(COMMANDS)}")
    kind, param, _ = COMMANDS[command]
    params: dict[str, Any] = {}
    if kind == "amplifier":
        params["on"] = command == "amp-on"
    elif param is not None:
        if value is None and command != "test-tone":
            raise SystemExit(
                f"{command} needs a value, e.g. `broadcast cluster cmd {code} {command} 70`"
            )
        if value is not None:
            params[param] = value
    body = {"kind": kind, "params": params, "clusters": [code]}
    with api_client.client(api_url) as client:
        op = _check(client.post("/api/v1/operations", json=body))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            op = _check(client.get(f"/api/v1/operations/{op['id']}"))
            [result] = op["results"]
            if result["state"] not in ("sent", "accepted"):
                break
            time.sleep(POLL_S)
    [result] = op["results"]
    colour = "green" if result["state"] == "done" else "red"
    reason = f": {result['reason']}" if result["reason"] else ""
    console.print(f"{code} {command}: [{colour}]{result['state']}[/]{reason}")
    return bool(result["state"] == "done")
