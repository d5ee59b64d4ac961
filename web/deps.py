"""FastAPI dependencies: the runtime's context, one session per request (commit or roll
back; a read session, or the write scope for a route that writes), and who is asking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.identify import signed_in_as
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


async def get_write_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.writing() as session:
        yield session


# A route that writes holds the write scope (core/writes.py) for the whole request: what it
# read cannot change under it before it writes. A request session that only read, then
# wrote, with a background writer between, is how a CSV import answered 500 on SQLite.
WriteSessionDep = Annotated[AsyncSession, Depends(get_write_session, scope="function")]


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
        actor = await signed_in_as(runtime, raw)
        if actor is None:
            raise Unauthenticated("sign-in expired or revoked; sign in again")
        return actor
    proxy = settings.auth_proxy_headers
    if x_actor and (proxy if proxy is not None else not production):
        return actors.from_headers(x_actor, x_role, x_area, production=production)
    return actors.from_headers(None, None, None, production=production)


ActorDep = Annotated[Actor, Depends(get_actor)]
