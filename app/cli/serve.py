"""The processes: `serve` (the API), `media-serve`, `scheduler`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.options import configure_logging

app = typer.Typer()


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    jobs: Annotated[bool, typer.Option(help="run the background jobs in this process")] = True,
    access_log: Annotated[bool, typer.Option(help="log every HTTP request")] = False,
    ssl_certfile: Annotated[Path | None, typer.Option(help="serve https with this")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="... and this key")] = None,
) -> None:
    """Run the HTTP API (and, by default, the background jobs). https with --ssl-certfile
    and --ssl-keyfile; behind nginx (docker-compose.yml) nginx terminates TLS instead."""
    import uvicorn

    from app.main import create_app
    from core.settings import get_settings

    configure_logging()
    settings = get_settings().model_copy(update={"run_jobs_in_api": jobs})
    uvicorn.run(
        create_app(settings, settle_heap=True),
        host=host,
        port=port,
        log_config=None,  # uvicorn's lines go through ours (text or JSON)
        log_level="info",
        access_log=access_log,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


@app.command("media-serve")
def media_serve(host: str = "127.0.0.1", port: int = 8001) -> None:
    """Serve the media directory to clusters (stateless; run as many as needed)."""
    import uvicorn

    from core.settings import get_settings
    from media.asgi import standalone_app

    configure_logging()
    settings = get_settings()
    uvicorn.run(
        standalone_app(settings.media_dir, settings.media_signing_key),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


@app.command()
def scheduler() -> None:
    """The background jobs as their own process: run several, one leads (PostgreSQL
    advisory lock); set BROADCAST_RUN_JOBS_IN_API=false on the API replicas."""
    from app.scheduler_process import run

    run()
