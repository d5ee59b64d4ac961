from __future__ import annotations

import secrets
from typing import Any

from tests.support import Stack
from wire.signing import SigningKey

PASSWORD = "một câu dài dễ nhớ 2026"  # a sentence: long, and passes the rules


async def make_user(
    stack: Stack, username: str, *, role: str, area: str | None = None, **headers: str
) -> dict[str, Any]:
    """Created by the development administrator (or by whoever `headers` sign in as)."""
    response = await stack.client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "role": role, "area": area},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def signed_in(stack: Stack, username: str, password: str = PASSWORD) -> str:
    response = await stack.client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    assert response.cookies.get("bc_session") == response.json()["token"]
    # The test's client is shared: it must not go on acting as this person by cookie.
    stack.client.cookies.clear()
    token: str = response.json()["token"]
    return token


def production_secrets() -> dict[str, str]:
    """Settings overrides for a production stack: real secrets, as production demands."""
    return {
        "environment": "production",
        "secret_key": secrets.token_urlsafe(32),
        "signing_key": SigningKey.generate().seed_text,
    }


async def first_admin(stack: Stack, username: str = "quan.tri") -> dict[str, str]:
    """Production has no built-in administrator: the first one is made in the database
    (as `broadcast users create` does); its Authorization header, signed in."""
    from accounts import service
    from accounts.schemas import UserCreate

    async with stack.runtime.writing() as session:
        await service.create(
            session,
            UserCreate(username=username, password=PASSWORD, role="admin"),  # type: ignore[arg-type]
            by="test",
            now=stack.runtime.clock.now(),
        )
    return {"Authorization": f"Bearer {await signed_in(stack, username)}"}
