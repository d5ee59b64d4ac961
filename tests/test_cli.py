"""`broadcast alert` against a running stack, watching real clusters confirm."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from io import StringIO
from pathlib import Path

from rich.console import Console

from app.alert import AlertRequest, send_and_watch
from simulator.fleet import Fleet
from tests.broadcast.helpers import seed_province
from tests.support import Stack


async def test_alert_sends_and_reports_every_cluster_confirmed(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = [s for s in await seed_province(stack) if "690" in s.areas]
    fleet = fleet_factory(specs[:-3])  # three clusters stay silent
    await fleet.start()
    out = StringIO()
    request = AlertRequest(
        api_url=stack.settings.public_base_url,
        areas=["690"],
        clusters=[],
        media=tone_mp3,
        stream=None,
        title="Diễn tập",
        timeout_s=8,
    )
    ok = await asyncio.to_thread(send_and_watch, request, Console(file=out, width=120))
    text = out.getvalue()
    assert ok is False
    assert f"to {len(specs)} clusters" in text
    assert "3 not confirmed" in text
    for silent in specs[-3:]:
        assert silent.code in text


def test_alert_without_a_reachable_control_plane_says_so_in_one_line() -> None:
    from typer.testing import CliRunner

    from app.broker import free_port
    from app.cli import app

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
    specs = await seed_province(stack)
    commune = specs[0].areas[-1]
    local = [s for s in specs if commune in s.areas]
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
