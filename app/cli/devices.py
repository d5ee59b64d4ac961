"""Devices without the control plane's help: `simulate` a fleet, the vendors' `conformance` kit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.options import configure_logging

app = typer.Typer()


@app.command()
def simulate(
    clusters: Annotated[
        int | None, typer.Option(help="how many (default: all provisioned)")
    ] = None,
    api: Annotated[str | None, typer.Option(help="control plane URL")] = None,
    area: Annotated[str | None, typer.Option(help="only clusters under this area")] = None,
    processes: int = 1,
    offline: Annotated[float, typer.Option(help="share that never connects")] = 0.0,
    ack_loss: Annotated[float, typer.Option(help="share of acks dropped")] = 0.0,
    latency: Annotated[float, typer.Option(help="max extra ack delay, seconds")] = 0.0,
    churn: Annotated[float, typer.Option(help="share dropping their link per minute")] = 0.0,
    flapping: Annotated[float, typer.Option(help="share whose link drops every 4 s")] = 0.0,
    edge_port: Annotated[
        list[int] | None,
        typer.Option(help="an edge broker's port (repeatable): processes spread over them"),
    ] = None,
    duplicate_acks: Annotated[float, typer.Option(help="share of acks sent twice")] = 0.0,
    clock_skew: Annotated[
        float, typer.Option(help="seconds: a third of the clocks ahead, a third behind")
    ] = 0.0,
    time_compression: float = 1.0,
    heartbeat: float = 60.0,
    live_report: Annotated[
        str | None,
        typer.Option(help="a file: each live stream's audio positions and times, at its end"),
    ] = None,
) -> None:
    """Run simulated clusters against the broker until interrupted."""
    from core.settings import get_settings
    from simulator.runner import SimulateOptions, run

    settings = get_settings()
    configure_logging("WARNING")
    run(
        SimulateOptions(
            api_url=api or settings.public_base_url,
            broker_host=settings.mqtt_host,
            broker_port=settings.mqtt_port,
            edge_ports=tuple(edge_port or ()),
            clusters=clusters,
            area=area,
            processes=processes,
            offline=offline,
            ack_loss=ack_loss,
            latency_s=latency,
            churn_per_min=churn,
            flapping=flapping,
            duplicate_acks=duplicate_acks,
            clock_skew_s=clock_skew,
            time_compression=time_compression,
            heartbeat_s=heartbeat,
            live_report=live_report,
        )
    )


@app.command()
def conformance(
    device: Annotated[str, typer.Option(help="the registered, online device to check")],
    api: Annotated[str, typer.Option(help="control plane URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(help="an API token (administrator)")] = None,
    heartbeat_s: Annotated[float, typer.Option(help="the device's heartbeat interval")] = 60.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="also write the results")] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="only this section's checks (repeat: --only 9 --only 11)"),
    ] = None,
    stream_url: Annotated[
        str | None,
        typer.Option(help="a live stream the device can reach (4.4); default: the kit's own"),
    ] = None,
    bulletin: Annotated[
        str | None, typer.Option(help="an approved bulletin with audio, for the schedules (11)")
    ] = None,
    cut_link: Annotated[
        str | None,
        typer.Option(
            help="a command, given N appended, that takes the device off the network for N s (11)"
        ),
    ] = None,
    schedule_lead_s: Annotated[
        float, typer.Option(help="how far ahead a schedule's slot is (more than the prefire)")
    ] = 10.0,
    firmware: Annotated[
        str | None, typer.Option(help="an uploaded, approved image's version to install (4.7)")
    ] = None,
    move_to: Annotated[
        str | None,
        typer.Option(help="an area to move the device to and back, for set_areas (4.6)"),
    ] = None,
    device_password: Annotated[
        str | None, typer.Option(help="the device's broker password, for its provisioning (10)")
    ] = None,
) -> None:
    """Drive one device (or a vendor's simulator) through the protocol against a running
    control plane and its broker (MQTT_* settings), and print pass, fail or skip per
    section of docs/protocol.md. Exits 1 if any check fails."""
    from conformance.kit import Kit, command_cutting_the_link, report, to_json
    from core.settings import get_settings

    settings = get_settings()
    kit = Kit(
        api_url=api,
        device=device,
        mqtt_host=settings.mqtt_host,
        mqtt_port=settings.mqtt_port,
        mqtt_username=settings.mqtt_username,
        mqtt_password=settings.mqtt_password,
        headers={"Authorization": f"Bearer {token}"} if token else None,
        heartbeat_s=heartbeat_s,
        only=frozenset(only) if only else None,
        stream_url=stream_url,
        bulletin_id=bulletin,
        cut_link=command_cutting_the_link(cut_link) if cut_link else None,
        schedule_lead_s=schedule_lead_s,
        firmware=firmware,
        move_to=move_to,
        device_password=device_password,
    )
    checks = kit.run()
    typer.echo(report(checks))
    if json_path is not None:
        json_path.write_text(to_json(checks))
    if any(c.failed for c in checks):
        raise typer.Exit(1)
