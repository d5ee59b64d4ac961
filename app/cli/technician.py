"""For technicians and the duty officer, through the API: `health`, `cluster show|cmd`."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.options import ApiOption, api_url

app = typer.Typer()
cluster = typer.Typer(name="cluster", help="One cluster, for technicians.", no_args_is_help=True)
app.add_typer(cluster)


@app.command()
def health(
    area: Annotated[str, typer.Option(help="area code (its subtree)")] = "70",
    api: ApiOption = None,
) -> None:
    """Clusters online, offline, faulty and on battery per area, worst first; open alarms."""
    from rich.console import Console

    from app.technician import show_health

    show_health(api_url(api), area, Console())


@cluster.command("show")
def cluster_show(code: str, api: ApiOption = None) -> None:
    """One cluster: link state, telemetry, open alarms."""
    from rich.console import Console

    from app.technician import show_cluster

    show_cluster(api_url(api), code, Console())


@cluster.command("cmd")
def cluster_cmd(
    code: str,
    command: Annotated[
        str, typer.Argument(help="volume, amp-on, amp-off, reboot, test-tone, fm (kHz), status")
    ],
    value: Annotated[int | None, typer.Argument(help="volume 0-100, FM kHz, tone seconds")] = None,
    timeout: float = 60.0,
    api: ApiOption = None,
) -> None:
    """Send a remote command and wait for the cluster's answer (exit 1 unless done)."""
    from rich.console import Console

    from app.technician import send_command

    if not send_command(api_url(api), code, command, value, Console(), timeout):
        raise typer.Exit(1)
