"""The `broadcast` command, one module per group of commands. Heavy imports stay inside
the commands: `simulate` stays lean, and `serve` never loads the benchmarks (bench/) or
the development stack (devstack/)."""

from __future__ import annotations

import typer

from app.cli import (
    accounts,
    alert,
    areas,
    broker,
    db,
    demo,
    devices,
    keys,
    live,
    loadtest,
    serve,
    technician,
    transfer,
)

app = typer.Typer(help="Provincial loudspeaker broadcast control.", no_args_is_help=True)
# Each module's commands, a group's under its name, in the README's order.
for commands in (
    db.app,
    demo.app,
    areas.app,
    transfer.app,
    serve.app,
    devices.app,
    alert.app,
    live.app,
    loadtest.app,
    keys.app,
    technician.app,
    accounts.app,
    broker.app,
):
    app.add_typer(commands)


def main() -> None:
    app()
