"""`broadcast alert`: one broadcast sent through the API, watched until confirmed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer()
DEFAULT_TITLE = "Thông báo khẩn cấp"


@app.command()
def alert(
    area: Annotated[list[str] | None, typer.Option(help="target area code (repeatable)")] = None,
    cluster: Annotated[list[str] | None, typer.Option(help="target cluster (repeatable)")] = None,
    media: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
    stream: Annotated[str | None, typer.Option(help="stream URL to relay")] = None,
    text: Annotated[
        str | None, typer.Option(help="bulletin text: read aloud if no --media/--stream")
    ] = None,
    bulletin: Annotated[str | None, typer.Option(help="an approved bulletin's id")] = None,
    warning: Annotated[
        str | None,
        typer.Option(help="a standard warning's id: its clip, held by every cluster already"),
    ] = None,
    title: Annotated[
        str | None,
        typer.Option(help=f"default: the warning's, else {DEFAULT_TITLE!r}"),
    ] = None,
    cls: Annotated[
        str, typer.Option("--class", help="emergency, priority or normal")
    ] = "emergency",
    expires_in: Annotated[int, typer.Option(help="seconds until it expires")] = 3600,
    timeout: Annotated[float, typer.Option(help="seconds to watch")] = 120.0,
    api: Annotated[str | None, typer.Option(help="control plane URL")] = None,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="show whom it reaches and ask before sending; the clip is staged on the "
            "clusters meanwhile, so the send finds it held",
        ),
    ] = False,
) -> None:
    """Send a broadcast and show live progress until every cluster confirmed."""
    from app.alert import AlertRequest, send_and_watch
    from core.settings import get_settings

    if media is not None and stream is not None:
        raise typer.BadParameter("give --media or --stream, not both")
    if warning and (media is not None or stream is not None or bulletin):
        raise typer.BadParameter("a --warning is its own audio: no --media, --stream or --bulletin")
    if media is None and stream is None and not text and not bulletin and not warning:
        raise typer.BadParameter("give --media, --stream, --text, --bulletin or --warning")
    if not area and not cluster:
        raise typer.BadParameter("give at least one --area or --cluster")
    import httpx

    api_url = api or get_settings().public_base_url
    request = AlertRequest(
        api_url=api_url,
        areas=area or [],
        clusters=cluster or [],
        media=media,
        stream=stream,
        title=title if title or warning else DEFAULT_TITLE,
        text=text,
        bulletin=bulletin,
        warning=warning,
        cls=cls,
        expires_in_s=expires_in,
        timeout_s=timeout,
        confirm=_ask if confirm else None,
    )
    try:
        ok = send_and_watch(request)
    except httpx.HTTPError as exc:
        # At 2 a.m. the duty officer needs the reason in one line, not a traceback.
        typer.echo(f"cannot reach the control plane at {api_url}: {exc!r}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(0 if ok else 1)


def _ask(reach: dict[str, Any]) -> bool:
    staged = reach.get("staged") or {}
    held = " (the clip is being fetched by them meanwhile)" if staged.get("published") else ""
    typer.echo(
        f"{reach['speakers']} speaker clusters and {reach['eboards']} e-boards in "
        f"{reach['communes']} communes will sound{held}."
    )
    return typer.confirm("Send now?")
