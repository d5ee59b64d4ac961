"""The application takes its routers' routes as they are (app.main.add_routes) instead of
including the routers, which FastAPI 0.16x rebuilds per app on its first request: the
API must be the same one either way, and an app must not pay that rebuild."""

from __future__ import annotations

import json

import pytest

from app import main
from app.main import ROUTERS, create_app
from core.settings import Settings


def test_the_api_is_the_one_include_router_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = create_app(Settings(environment="test")).openapi()
    monkeypatch.setattr(main, "add_routes", lambda app, router: app.include_router(router))
    included = create_app(Settings(environment="test"))
    rebuilt = {id(route) for route in included.router.routes}
    assert not rebuilt & {id(route) for router in ROUTERS for route in router.routes}
    assert ours["paths"], "no path at all: the comparison would prove nothing"
    assert json.dumps(ours, sort_keys=True) == json.dumps(included.openapi(), sort_keys=True)


def test_every_app_holds_the_routes_its_routers_built_once() -> None:
    built_once = {id(route) for router in ROUTERS for route in router.routes}
    for app in (create_app(Settings(environment="test")), create_app(Settings(environment="test"))):
        held = {id(route) for route in app.router.routes}
        assert built_once <= held  # the same objects: nothing left to rebuild per app
