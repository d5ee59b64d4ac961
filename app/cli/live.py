"""`broadcast live`: speak to the clusters from a field officer's machine, without a
browser: the microphone, a file or stdin, over the same path as the console."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def live(
    area: Annotated[list[str] | None, typer.Option(help="target area code (repeatable)")] = None,
    cluster: Annotated[list[str] | None, typer.Option(help="target cluster (repeatable)")] = None,
    cls: Annotated[
        str, typer.Option("--class", help="emergency, priority or normal")
    ] = "emergency",
    title: str = "Phát trực tiếp",
    source: Annotated[
        str, typer.Option("--input", help="a file, - for stdin, mic for the microphone")
    ] = "mic",
    api: Annotated[str | None, typer.Option(help="control plane URL")] = None,
) -> None:
    """Go live: what the input says is heard on the clusters as it is said; the end of a
    file or stdin (Ctrl-C at the microphone) ends the session, the clusters answer played."""
    import asyncio
    import sys

    import httpx

    from app import api_client
    from core.settings import get_settings
    from live import sender as live_sender

    if not area and not cluster:
        raise typer.BadParameter("give at least one --area or --cluster")
    api_url = api or get_settings().public_base_url
    body = {"title": title, "class": cls, "areas": area or [], "clusters": cluster or []}
    try:
        with api_client.client(api_url) as http:
            started = http.post("/api/v1/live", json=body)
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach the control plane at {api_url}: {exc!r}", err=True)
        raise typer.Exit(2) from None
    if started.status_code != 201:
        typer.echo(f"refused ({started.status_code}): {started.text}", err=True)
        raise typer.Exit(1)
    session = started.json()
    typer.echo(f"live: broadcast {session['broadcast_id']} — speak; end of input ends it")
    url = live_sender.ws_url(api_url, session["audio_path"])
    stdin = sys.stdin.fileno() if source == "-" else None
    try:
        sent = asyncio.run(live_sender.send(url, source, headers=api_client.headers(), stdin=stdin))
    except KeyboardInterrupt:
        with api_client.client(api_url) as http:
            http.post(f"/api/v1/live/{session['broadcast_id']}/end")
        typer.echo("ended")
        raise typer.Exit(0) from None
    final = sent.final or {}
    typer.echo(
        f"ended: {final.get('end_reason')}; {final.get('recorded_ms', 0) / 1000:.1f} s on air"
    )
