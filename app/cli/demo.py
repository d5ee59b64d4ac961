"""The development stack's commands: `seed demo`, `demo`, `screenshots` (devstack/,
imported inside each command)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.options import ProcessesOption, configure_logging

if TYPE_CHECKING:
    from rich.console import Console

    from devstack.demo import Drill

app = typer.Typer()
seed = typer.Typer(name="seed", help="Demo data.", no_args_is_help=True)
app.add_typer(seed)


@seed.command("demo")
def seed_demo_command(
    clusters: Annotated[
        int | None, typer.Option(help="speaker clusters to create (default: the province's)")
    ] = None,
    eboards: Annotated[bool, typer.Option(help="also create public e-boards")] = True,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="the province as on this day (YYYY-MM-DD); before 2025-07-01: old Bình Phước",
        ),
    ] = None,
) -> None:
    """Build the province with its clusters: today's Đồng Nai (95 communes and wards, no
    districts), or old Bình Phước (11 districts, 111 communes) with --as-of 2025-06-30."""
    from core.clock import SystemClock
    from core.database import create_engine, create_session_maker
    from core.settings import get_settings
    from core.writes import writing_for
    from devstack.seed import seed_demo

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter(
            f"{as_of!r} is not a day (YYYY-MM-DD)", param_hint="--as-of"
        ) from None

    async def main() -> None:
        engine = create_engine(get_settings().database_url)
        async with writing_for(create_session_maker(engine))() as session:
            report = await seed_demo(
                session, SystemClock(), as_of=day, clusters=clusters, eboards=eboards
            )
        await engine.dispose()
        if report.created:
            districts = f"{report.districts} districts, " if report.districts else ""
            typer.echo(
                f"{report.province}: {districts}{report.communes} communes and wards, "
                f"{report.clusters} clusters with {report.speakers} speakers, "
                f"{report.eboards} e-boards"
            )
        else:
            typer.echo(f"{report.province} is already seeded")

    asyncio.run(main())


@app.command()
def demo(
    port: int = 8000,
    send_alert: Annotated[bool, typer.Option(help="send a province-wide emergency")] = True,
    processes: ProcessesOption = 2,
) -> None:
    """Everything at once: broker, database, demo province, API, simulated fleet."""
    from devstack.demo import run_demo

    configure_logging("WARNING")
    run_demo(port=port, send_drill=_send_drill if send_alert else None, processes=processes)


def _send_drill(drill: Drill, console: Console) -> None:
    """The demo's drill, sent and watched as `broadcast alert` does."""
    from app.alert import AlertRequest, send_and_watch

    request = AlertRequest(
        api_url=drill.api_url,
        areas=[drill.area],
        clusters=[],
        media=drill.audio,
        stream=None,
        title=drill.title,
        text=drill.text,
        timeout_s=drill.timeout_s,
    )
    send_and_watch(request, console)


@app.command("screenshots")
def screenshots(
    out: Annotated[Path, typer.Option(help="where the PNG files go")] = Path("docs/screenshots"),
    clusters: int = 1639,
    processes: ProcessesOption = 2,
) -> None:
    """The console's main pages photographed on a whole simulated province, in Debian's
    Chromium (the README shows them)."""
    from devstack.screenshots import take_screenshots

    configure_logging("WARNING")
    take_screenshots(out=out, clusters=clusters, processes=processes)
