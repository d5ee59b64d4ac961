"""The guard finds what a request touches through resolvers the domains register
(web/targets.py): a source a route uses with none registered stops the app at startup,
where it would otherwise answer 500 to the first person scoped to an area."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app import main
from app.main import create_app
from core.policy import Action
from core.settings import Settings
from web.guard import allow, sources_used
from web.targets import NOTHING, Asked, From, Resolvers, Targets


def test_every_source_a_route_uses_has_a_resolver() -> None:
    app = create_app(Settings(environment="test"))
    used = sources_used(app.router.routes)
    assert used == set(From)  # every source is in use (and the walk sees the routes)
    assert app.state.resolvers.missing(used) == []


def test_an_app_with_a_source_nobody_resolves_does_not_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(main, "resolvers", Resolvers)  # no domain registers any
    with pytest.raises(RuntimeError, match=r"From\.ALARM, From\.BROADCAST"):
        create_app(Settings(environment="test"))


def test_a_source_is_resolved_by_one_domain_only() -> None:
    async def one(_session: AsyncSession, _asked: Asked) -> Targets:
        return NOTHING

    async def other(_session: AsyncSession, _asked: Asked) -> Targets:
        return NOTHING

    resolvers = Resolvers()
    resolvers.register(From.BROADCAST, one)
    resolvers.register(From.BROADCAST, one)  # the same again (a second app) is harmless
    with pytest.raises(ValueError, match=r"From\.BROADCAST"):
        resolvers.register(From.BROADCAST, other)


def test_the_request_s_own_sources_need_no_domain() -> None:
    app = FastAPI()

    @app.get("/areas/{code}", dependencies=[allow(Action.READ, From.AREA_PATH)])
    async def area(code: str) -> str:
        return code

    @app.get("/broadcasts/{broadcast_id}", dependencies=[allow(Action.READ, From.BROADCAST)])
    async def broadcast(broadcast_id: str) -> str:
        return broadcast_id

    assert sources_used(app.router.routes) == {From.AREA_PATH, From.BROADCAST}
    assert Resolvers().missing(sources_used(app.router.routes)) == [From.BROADCAST]
