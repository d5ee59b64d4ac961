"""`broadcast db`: the schema's migrations."""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(name="db", help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to the configured database."""
    from core.database import create_engine
    from core.migrate import upgrade
    from core.settings import get_settings

    async def main() -> None:
        engine = create_engine(get_settings().database_url)
        await upgrade(engine, revision)
        await engine.dispose()

    asyncio.run(main())
    typer.echo(f"database at {revision}")


@app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to a revision ("base" for none)."""
    from core.database import create_engine
    from core.migrate import downgrade
    from core.settings import get_settings

    async def main() -> None:
        engine = create_engine(get_settings().database_url)
        await downgrade(engine, revision)
        await engine.dispose()

    asyncio.run(main())
