"""HTTP clients for the CLI: signed in with the token in BROADCAST_TOKEN (`broadcast
login` prints one), or, on a development machine, as nobody in particular."""

from __future__ import annotations

import os

import httpx

TOKEN_ENV = "BROADCAST_TOKEN"


def headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV, "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def client(api_url: str, *, timeout: float = 30) -> httpx.Client:
    return httpx.Client(base_url=api_url, timeout=timeout, headers=headers())
