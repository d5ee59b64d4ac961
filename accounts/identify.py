"""Who a sign-in token stands for, as every door asks it (the request gate, the API's
dependency, the console): read in a read session. The token's last use (at most once a
minute) is written off the request path, in a write scope of its own: a request is not
held behind the process's writers only to be identified, and a route that holds the write
scope already does not meet it again."""

from __future__ import annotations

from datetime import datetime

from accounts import service
from core.actors import Actor
from core.context import Context
from core.database import session_scope


async def signed_in_as(ctx: Context, raw: str) -> Actor | None:
    """The active user a live token belongs to, as an actor; None if there is none."""
    now = ctx.clock.now()
    async with session_scope(ctx.sessions) as session:
        found = await service.resolve_token(session, raw, now=now)
    if found is None:
        return None
    user, token = found
    if service.touch_due(token, now):
        ctx.spawn(_touch(ctx, token.id, now), name="token-last-used")
    return service.actor_of(user)


async def _touch(ctx: Context, token_id: int, now: datetime) -> None:
    async with ctx.writing() as session:
        await service.touch(session, token_id, now=now)
