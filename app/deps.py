"""FastAPI dependencies: the runtime and one session per request (commit or roll back)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.runtime import Runtime
from core import actors
from core.actors import Actor
from core.database import session_scope


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with session_scope(runtime.sessions) as session:
        yield session


# scope="function": the transaction commits before the response leaves. With the default
# ("request") it committed after, so a client's next request could miss what the last one
# answered 201 for (an area created, then its child refused with 404: seen in the tests).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_actor(
    runtime: RuntimeDep,
    x_actor: Annotated[str | None, Header()] = None,
    x_role: Annotated[str | None, Header()] = None,
    x_area: Annotated[str | None, Header()] = None,
) -> Actor:
    production = runtime.settings.environment == "production"
    return actors.from_headers(x_actor, x_role, x_area, production=production)


ActorDep = Annotated[Actor, Depends(get_actor)]
