"""`broadcast broker`: the broker's accounts and access lists from the register."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(
    name="broker", help="The broker's accounts and access lists.", no_args_is_help=True
)


@app.command("sync")
def broker_sync() -> None:
    """Write the broker's password and access files from the cluster register
    (BROKER_PASSWORD_FILE, BROKER_ACL_FILE) and signal it if they changed; hold every
    cluster account in its dynamic-security plugin first (before the broker's first
    start: write the plugin's file, BROKER_DYNSEC_FILE)."""
    from core.database import create_engine, create_session_maker, session_scope
    from core.settings import get_settings
    from devices import broker_auth

    settings = get_settings()
    if not broker_auth.managed(settings):
        typer.echo("BROKER_PASSWORD_FILE and BROKER_ACL_FILE are not set", err=True)
        raise typer.Exit(2)

    async def main() -> bool:
        engine = create_engine(settings.database_url)
        try:
            async with session_scope(create_session_maker(engine)) as session:
                return await broker_auth.sync(session, settings, starting=True)
        finally:
            await engine.dispose()

    changed = asyncio.run(main())
    typer.echo("broker files written" if changed else "broker files already up to date")
