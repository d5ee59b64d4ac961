"""`broadcast export` and `broadcast import`: one province's register, history and media
carried from one instance into another (docs/archive.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="the archive to write (.tar.gz)")],
    database_url: Annotated[
        str | None, typer.Option(help="default: the configured database")
    ] = None,
) -> None:
    """Write this province's register, history and media as one archive (docs/archive.md),
    for `broadcast import` on another instance."""
    from app.transfer_commands import run_export

    typer.echo(run_export(out, database_url))


@app.command("import")
def import_command(
    archive: Annotated[Path, typer.Argument(help="an archive from `broadcast export`")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only print the report")] = False,
    database_url: Annotated[
        str | None, typer.Option(help="default: the configured database")
    ] = None,
) -> None:
    """Take another instance's archive into this register, in one transaction: what is
    the same is merged, a conflict (a cluster code, a user name) reported and skipped,
    never overwritten."""
    from app.transfer_commands import run_import
    from core.errors import AppError

    try:
        run_import(archive, database_url, dry_run=dry_run)
    except AppError as exc:
        typer.echo(f"refused: {exc.message}", err=True)
        raise typer.Exit(2) from None
