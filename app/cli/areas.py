"""`broadcast areas`: the administrative units (the 2025 reform applied)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(name="areas", help="The administrative units.", no_args_is_help=True)


@app.command("reorganise")
def areas_reorganise(
    effective: Annotated[str, typer.Option(help="the day the new units exist: 2025-07-01")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only print the plan")] = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="also write the plan's table here")
    ] = None,
) -> None:
    """Apply the official conversion to the register (issue 22): new areas created, old
    ones dissolved (kept), clusters re-homed, accounts re-scoped, schedules moved. Each
    step is one transaction; run it again after an interruption (or to see that nothing
    is left: applying twice changes nothing)."""
    from rich.console import Console
    from rich.table import Table

    from core.clock import SystemClock
    from core.database import create_engine, create_session_maker, session_scope
    from core.settings import get_settings
    from core.writes import writing_for
    from devices import broker_auth
    from reorganisation.apply import apply
    from reorganisation.official import VietnamProvinces
    from reorganisation.plan import build

    try:
        day = date.fromisoformat(effective)
    except ValueError:
        raise typer.BadParameter(f"{effective!r} is not a day", param_hint="--effective") from None
    settings = get_settings()

    async def main() -> None:
        engine = create_engine(settings.database_url)
        sessions = create_session_maker(engine)
        try:
            if dry_run:
                async with session_scope(sessions) as session:
                    plan = await build(session, VietnamProvinces(), day)
                steps: list[str] = []
            else:

                async def follow(step: str) -> None:
                    if step == "clusters":
                        async with session_scope(sessions) as session:
                            await broker_auth.sync(session, settings, starting=True)

                # The devices are told their new areas by the running control plane's
                # sweep (this process has no broker connection of its own).
                applied = await apply(
                    sessions,
                    writing_for(sessions),
                    SystemClock(),
                    settings,
                    VietnamProvinces(),
                    day,
                    actor="cli",
                    after_step=follow,
                )
                plan, steps = applied.plan, applied.steps
        finally:
            await engine.dispose()
        table = Table("what", "item", "from", "to", title=f"{plan.province.name}, {day}")
        for row in plan.rows():
            table.add_row(*row)
        console = Console()
        console.print(table)
        console.print(plan.summary())
        console.print("dry run: nothing changed" if dry_run else f"applied: {steps or 'nothing'}")
        if csv_path is not None:
            csv_path.write_text(plan.csv(), encoding="utf-8")

    asyncio.run(main())
