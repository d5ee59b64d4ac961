"""`broadcast keys`: the Ed25519 key that signs commands, and the secrets."""

from __future__ import annotations

import typer

app = typer.Typer(name="keys", help="The Ed25519 key that signs commands.", no_args_is_help=True)


@app.command("generate")
def keys_generate() -> None:
    """New secrets for production: BROADCAST_SECRET_KEY (media grants, device keys) and
    BROADCAST_SIGNING_KEY (the Ed25519 seed that signs commands), with its public key."""
    import secrets

    from wire.signing import SigningKey

    key = SigningKey.generate()
    typer.echo(f"BROADCAST_SECRET_KEY={secrets.token_urlsafe(32)}")
    typer.echo(f"BROADCAST_SIGNING_KEY={key.seed_text}")
    typer.echo(f"seed (secret)  {key.seed_text}")
    typer.echo(f"public key     {key.public_text}")
    typer.echo(f"key id         {key.kid}")


@app.command("show")
def keys_show() -> None:
    """The configured signing key's id and the public keys devices are told to trust."""
    from core.settings import get_settings

    settings = get_settings()
    typer.echo(f"signing key id {settings.signer.kid}")
    for public in settings.device_trusted_keys:
        typer.echo(f"trusted        {public}")
