"""FastAPI dependencies: the runtime's context, one session per request (commit or roll
back), and who is asking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as account_service
from core import actors
from core.actors import Actor
from core.context import Context
from core.database import session_scope
from core.errors import Unauthenticated


def get_runtime(request: Request) -> Any:
    """The process's runtime (app/runtime.py). It satisfies every domain's context
    Protocol structurally, and each route names the one it needs:
    `Annotated[Sending, Depends(get_runtime)]`; most need only `RuntimeDep`."""
    return request.app.state.runtime


RuntimeDep = Annotated[Context, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with session_scope(runtime.sessions) as session:
        yield session


# scope="function": the transaction commits before the response leaves. With the default
# ("request") it committed after, so a client's next request could miss what the last one
# answered 201 for (an area created, then its child refused with 404: seen in the tests).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


SESSION_COOKIE = "bc_session"


async def get_actor(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    x_actor: Annotated[str | None, Header()] = None,
    x_role: Annotated[str | None, Header()] = None,
    x_area: Annotated[str | None, Header()] = None,
) -> Actor:
    """Who is asking: a bearer token (API, CLI) or the session cookie (web); else, where
    allowed, a trusted proxy's headers; else, outside production, the built-in
    administrator. Kept on the request for the audit log."""
    actor = await _identify(request, runtime, authorization, x_actor, x_role, x_area)
    request.state.actor = actor
    return actor


async def _identify(
    request: Request,
    runtime: RuntimeDep,
    authorization: str | None,
    x_actor: str | None,
    x_role: str | None,
    x_area: str | None,
) -> Actor:
    settings = runtime.settings
    production = settings.environment == "production"
    found_before: Actor | None = getattr(request.state, "identified", None)
    if found_before is not None:  # the request gate looked it up before reading the body
        return found_before
    raw = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("Authorization must be `Bearer <token>`")
        raw = value.strip()
    elif cookie := request.cookies.get(SESSION_COOKIE):
        raw = cookie
    if raw is not None:
        async with session_scope(runtime.sessions) as session:
            found = await account_service.resolve_token(session, raw, now=runtime.clock.now())
            if found is None:
                raise Unauthenticated("sign-in expired or revoked; sign in again")
            return account_service.actor_of(found[0])
    proxy = settings.auth_proxy_headers
    if x_actor and (proxy if proxy is not None else not production):
        return actors.from_headers(x_actor, x_role, x_area, production=production)
    return actors.from_headers(None, None, None, production=production)


ActorDep = Annotated[Actor, Depends(get_actor)]
