"""`broadcast alert` against a running stack, watching real clusters confirm."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from io import StringIO
from pathlib import Path
from typing import Any

from rich.console import Console

from app.alert import AlertRequest, send_and_watch
from simulator.fleet import Fleet
from tests.factories import small_province
from tests.support import Stack, eventually


async def test_alert_sends_and_reports_every_cluster_confirmed(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = (await small_province(stack, clusters_per_commune=2)).of("689")  # six
    fleet = fleet_factory(specs[:-3])  # three clusters stay silent
    await fleet.start()
    out = StringIO()
    request = AlertRequest(
        api_url=stack.settings.public_base_url,
        areas=["689"],
        clusters=[],
        media=tone_mp3,
        stream=None,
        title="Diễn tập",
        timeout_s=5,  # the three online confirm in well under a second; the rest wait it out
    )
    ok = await asyncio.to_thread(send_and_watch, request, Console(file=out, width=120))
    text = out.getvalue()
    assert ok is False
    assert f"to {len(specs)} clusters" in text
    assert "3 not confirmed" in text
    for silent in specs[-3:]:
        assert silent.code in text


async def test_alert_confirm_shows_the_reach_stages_the_clip_and_may_send_nothing(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
) -> None:
    stack = await stack_factory(inline_media_max_bytes=0)  # the clip goes by download
    specs = (await small_province(stack)).speakers("25216")
    fleet = fleet_factory(specs)
    await fleet.start()
    asked: list[dict[str, Any]] = []

    def decline(reach: dict[str, Any]) -> bool:
        asked.append(reach)
        return False

    request = AlertRequest(
        api_url=stack.settings.public_base_url,
        areas=["25216"],
        clusters=[],
        media=tone_mp3,
        stream=None,
        title="Diễn tập",
        confirm=decline,
    )
    out = StringIO()
    ok = await asyncio.to_thread(send_and_watch, request, Console(file=out, width=120))
    [reach] = asked
    assert ok is False and "not sent" in out.getvalue()
    assert reach["speakers"] == len(specs) and reach["staged"]["published"]
    await eventually(
        lambda: _now(fleet.count(lambda d: d.stages_heard == 1)), lambda n: n == len(specs)
    )
    listed = await stack.client.get("/api/v1/broadcasts")
    assert listed.json()["total"] == 0, "declined: nothing sent"


async def _now[T](value: T) -> T:
    return value


def test_alert_without_a_reachable_control_plane_says_so_in_one_line() -> None:
    from typer.testing import CliRunner

    from app.cli import app
    from devstack.broker import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(
        app, ["alert", "--api", url, "--area", "70", "--stream", "http://127.0.0.1:9/radio"]
    )
    assert result.exit_code == 2
    assert f"cannot reach the control plane at {url}" in result.output
    assert "Traceback" not in result.output


async def test_alert_from_typed_text_reaches_every_cluster(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    commune = "25216"
    local = (await small_province(stack, eboards=True)).of(commune)
    fleet = fleet_factory(local, time_compression=20)
    await fleet.start()
    out = StringIO()
    request = AlertRequest(
        api_url=stack.settings.public_base_url,
        areas=[commune],
        clusters=[],
        media=None,
        stream=None,
        title="Cháy rừng",
        text="Cháy rừng tại tiểu khu 12 lúc 14h. Người dân không vào rừng.",
        timeout_s=30,
    )
    ok = await asyncio.to_thread(send_and_watch, request, Console(file=out, width=120))
    assert ok is True, out.getvalue()
    assert fleet.count(lambda d: sum(d.play_counts.values()) == 1) == len(local)


def test_keys_generate_then_show_the_configured_key() -> None:
    import os
    import subprocess
    import sys

    from wire.signing import SigningKey

    def run(*args: str, **env: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "app", "keys", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    generated = run("generate").splitlines()
    env = dict(line.split("=", 1) for line in generated[:2])
    seed = generated[2].split()[-1]
    public = generated[3].split()[-1]
    key = SigningKey.from_text(seed)
    assert key.public_text == public and generated[4].split()[-1] == key.kid
    assert env["BROADCAST_SIGNING_KEY"] == seed
    # What it prints is what production asks for.
    shown = run(
        "show",
        **env,
        BROADCAST_ENVIRONMENT="production",
        BROADCAST_TRUSTED_KEYS=f'["{public}"]',
    )
    assert f"signing key id {key.kid}" in shown
    assert shown.count(public) == 1, "its own public key listed once"


async def test_technician_commands_show_health_and_change_a_cluster(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    from app.technician import send_command, show_cluster, show_health
    from simulator.provisioning import fetch_specs
    from tests.support import eventually

    province = await small_province(stack, clusters_per_commune=3, eboards=True)
    specs = province.speakers("25216")
    fleet = fleet_factory(specs[:3])  # the others never come up
    await fleet.start()
    device = fleet.devices[specs[0].code]
    device.condition.lose_mains()
    assert device.heartbeat_now()
    url = stack.settings.public_base_url

    async def on_battery() -> str:
        out = StringIO()
        await asyncio.to_thread(show_cluster, url, device.spec.code, Console(file=out, width=160))
        return out.getvalue()

    page = await eventually(on_battery, lambda text: "battery 12.4 V" in text, what="battery")
    assert "online" in page and device.spec.code in page

    out = StringIO()
    console = Console(file=out, width=160)
    done = await asyncio.to_thread(send_command, url, device.spec.code, "volume", 40, console, 30)
    assert done is True and device.volume == 40
    assert f"{device.spec.code} volume: done" in out.getvalue()

    out = StringIO()
    await asyncio.to_thread(show_health, url, "25216", Console(file=out, width=160))
    text = out.getvalue()
    assert "Health of 25216" in text
    row = next(line for line in text.splitlines() if "25216" in line and "│" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    total = len([s for s in await fetch_specs(url) if "25216" in s.areas])  # e-boards too
    assert cells[2:] == [str(total), "3", str(total - 3), "0", "1"]


async def test_alert_airs_a_standard_warning_by_its_id(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = (await small_province(stack)).speakers("25216")
    fleet = fleet_factory(specs)
    await fleet.start()
    with tone_mp3.open("rb") as f:
        clip = (await stack.client.post("/api/v1/media", files={"file": ("lu.mp3", f)})).json()
    put = await stack.client.put(
        "/api/v1/warnings/flood-evacuate",
        json={"title": "Lũ: sơ tán ngay", "media_sha256": clip["sha256"]},
    )
    assert put.status_code == 201, put.text
    asked: list[dict[str, Any]] = []

    def accept(reach: dict[str, Any]) -> bool:
        asked.append(reach)
        return True

    request = AlertRequest(
        api_url=stack.settings.public_base_url,
        areas=["25216"],
        clusters=[],
        media=None,
        stream=None,
        title=None,
        warning="flood-evacuate",
        confirm=accept,
    )
    out = StringIO()
    ok = await asyncio.to_thread(send_and_watch, request, Console(file=out, width=120))
    assert ok is True, out.getvalue()
    [reach] = asked
    assert reach["speakers"] == len(specs) and reach["staged"] is None, "held: nothing staged"
    assert "'Lũ: sơ tán ngay'" in out.getvalue()
    [sent] = (await stack.client.get("/api/v1/broadcasts")).json()["items"]
    assert sent["title"] == "Lũ: sơ tán ngay"


def test_alert_refuses_a_warning_with_other_audio() -> None:
    from typer.testing import CliRunner

    from app.cli import app

    result = CliRunner().invoke(
        app, ["alert", "--area", "70", "--warning", "storm-9", "--stream", "http://h/s"]
    )
    assert result.exit_code == 2 and "--warning" in result.output
