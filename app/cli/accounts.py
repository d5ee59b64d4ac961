"""Accounts: `users create` on the database directly, `login` for an API token."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.cli.options import ApiOption, api_url

app = typer.Typer()
users = typer.Typer(name="users", help="Accounts (on the database directly).", no_args_is_help=True)
app.add_typer(users)


@users.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, province_officer, district_operator, ...")],
    area: Annotated[str | None, typer.Option(help="area code it is scoped to")] = None,
    full_name: str = "",
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
) -> None:
    """Create an account straight in the database: the first administrator, or one made
    while the API is down. Asks for the password (twice) unless --password-stdin."""
    import sys

    from pydantic import ValidationError

    from accounts import service
    from accounts.schemas import UserCreate
    from core.clock import SystemClock
    from core.database import create_engine, create_session_maker
    from core.errors import AppError
    from core.settings import get_settings
    from core.writes import writing_for

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserCreate.model_validate(
            {
                "username": username,
                "password": password,
                "role": role,
                "area": area,
                "full_name": full_name,
            }
        )
    except ValidationError as exc:
        typer.echo(f"refused: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        settings = get_settings()
        engine = create_engine(settings.database_url)
        try:
            async with writing_for(create_session_maker(engine))() as session:
                await service.create(
                    session,
                    data,
                    by="cli",
                    now=SystemClock().now(),
                    production=settings.environment == "production",
                )
        finally:
            await engine.dispose()

    try:
        asyncio.run(main())
    except AppError as exc:
        typer.echo(f"refused: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {username} ({role}{', ' + area if area else ''})")


@app.command()
def login(
    username: Annotated[str, typer.Option(prompt=True)],
    api: ApiOption = None,
    days: Annotated[int, typer.Option(help="how long the token lasts")] = 30,
) -> None:
    """Sign in and print an API token for the other commands (export BROADCAST_TOKEN=...)."""
    import httpx

    password = typer.prompt("password", hide_input=True)
    with httpx.Client(base_url=api_url(api), timeout=30) as client:
        signed_in = client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        if signed_in.status_code != 200:
            typer.echo(f"refused: {signed_in.json().get('error')}", err=True)
            raise typer.Exit(1)
        session = signed_in.json()["token"]
        created = client.post(
            "/api/v1/auth/tokens",
            json={"name": "cli", "days": days, "password": password},
            headers={"Authorization": f"Bearer {session}"},
        )
        created.raise_for_status()
        client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {session}"})
    typer.echo(f"export BROADCAST_TOKEN={created.json()['token']}")
