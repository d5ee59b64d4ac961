"""Every role against every kind of action, inside and outside its area, signed in with
real accounts and tokens; and no endpoint without an authorisation rule."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from app.main import create_app
from core.settings import Settings
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.security.helpers import make_user, production_secrets, signed_in
from tests.support import Stack
from web.guard import GUARD_MARKER

COMMUNE = "25216"
ROLES = {  # role: the area it is scoped to ("district": COMMUNE's district)
    "commune_operator": "commune",
    "district_operator": "district",
    "province_officer": None,
    "editor": None,
    "technician": "district",
    "admin": None,
    "observer": None,
}
# The expected matrix, written out (not derived from the policy it checks):
# for each action, the roles allowed inside the area and the roles allowed outside it.
IN, OUT = "inside", "outside"
EVERYONE = set(ROLES)
PROVINCIAL = {"province_officer", "editor", "admin", "observer"}
EXPECTED: dict[str, dict[str, set[str]]] = {
    "read health": {IN: EVERYONE, OUT: PROVINCIAL},
    "read a cluster": {IN: EVERYONE, OUT: PROVINCIAL},
    "read a broadcast": {IN: EVERYONE, OUT: PROVINCIAL},
    "send an emergency": {IN: {"province_officer", "admin"}, OUT: {"province_officer", "admin"}},
    "send a priority bulletin": {
        IN: {"commune_operator", "district_operator", "province_officer", "admin"},
        OUT: {"province_officer", "admin"},
    },
    "check a schedule": {
        IN: {"commune_operator", "district_operator", "province_officer", "admin"},
        OUT: {"province_officer", "admin"},
    },
    "command clusters": {IN: {"technician", "admin"}, OUT: {"admin"}},
    "rename an area": {IN: {"admin"}, OUT: {"admin"}},
    "change a standard warning": {
        IN: {"province_officer", "admin"},
        OUT: {"province_officer", "admin"},
    },
    "list accounts": {IN: {"admin"}, OUT: {"admin"}},
    "search the audit log": {IN: {"admin"}, OUT: {"admin"}},
}
SUCCESS = {200, 201, 204}


@pytest.fixture
async def province(stack: Stack, tone_mp3: Path) -> dict[str, Any]:
    specs = (await small_province(stack)).specs
    inside = next(s for s in specs if COMMUNE in s.areas and s.kind != "eboard")
    district = inside.areas[1]
    outside = next(s for s in specs if s.areas[1] != district and s.kind != "eboard")
    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, title="Lịch tiêm phòng", media_sha256=media["sha256"])
    sent = {}
    for where, spec in (("inside", inside), ("outside", outside)):
        response = await stack.client.post(
            "/api/v1/broadcasts",
            json={"title": "x", "areas": [spec.areas[2]], "media_sha256": media["sha256"]},
        )
        assert response.status_code == 201, response.text
        sent[where] = response.json()["id"]
    tokens = {}
    for role, scope in ROLES.items():
        area = {"commune": COMMUNE, "district": district, None: None}[scope]
        await make_user(stack, f"u.{role}", role=role, area=area)
        tokens[role] = await signed_in(stack, f"u.{role}")
    return {
        "cluster": {IN: inside.code, OUT: outside.code},
        "commune": {IN: COMMUNE, OUT: outside.areas[2]},
        "broadcast": sent,
        "media": media["sha256"],
        "bulletin": bulletin["id"],
        "tokens": tokens,
    }


def _requests(p: dict[str, Any], where: str) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    commune, cluster = p["commune"][where], p["cluster"][where]
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None, microsecond=0)
    return {
        "read health": ("GET", f"/api/v1/health?area={commune}", None),
        "read a cluster": ("GET", f"/api/v1/clusters/{cluster}/health", None),
        "read a broadcast": ("GET", f"/api/v1/broadcasts/{p['broadcast'][where]}", None),
        "send an emergency": (
            "POST",
            "/api/v1/broadcasts",
            {"title": "Lũ", "class": "emergency", "areas": [commune], "media_sha256": p["media"]},
        ),
        "send a priority bulletin": (
            "POST",
            "/api/v1/broadcasts",
            {
                "title": "Tiêm phòng",
                "class": "priority",
                "level": "commune",
                "areas": [commune],
                "bulletin_id": p["bulletin"],
            },
        ),
        "check a schedule": (
            "POST",
            "/api/v1/schedules/check",
            {
                "title": "Tin sáng",
                "bulletin_id": p["bulletin"],
                "starts_local": starts.isoformat(),
                "areas": [commune],
            },
        ),
        "command clusters": (
            "POST",
            "/api/v1/operations",
            {"kind": "report_status", "clusters": [cluster]},
        ),
        "rename an area": ("PATCH", f"/api/v1/areas/{commune}", {"name": "Xã mới"}),
        # The library is the province's: no area inside or outside, the same for both.
        "change a standard warning": (
            "PUT",
            "/api/v1/warnings/flood-evacuate",
            {"title": "Lũ: sơ tán", "media_sha256": p["media"]},
        ),
        "list accounts": ("GET", "/api/v1/users", None),
        "search the audit log": ("GET", "/api/v1/audit", None),
    }


async def test_every_role_against_every_action_inside_and_outside_its_area(
    stack: Stack, province: dict[str, Any]
) -> None:
    seen: dict[tuple[str, str, str], int] = {}
    for where in (IN, OUT):
        for action, (method, url, body) in _requests(province, where).items():
            for role in ROLES:
                token = province["tokens"][role]
                response = await stack.client.request(
                    method, url, json=body, headers={"Authorization": f"Bearer {token}"}
                )
                seen[(action, where, role)] = response.status_code
                allowed = role in EXPECTED[action][where]
                if allowed:
                    assert response.status_code in SUCCESS, (action, where, role, response.text)
                else:
                    assert response.status_code == 403, (action, where, role, response.text)
                    assert response.json()["error"], response.text
    assert len(seen) == 2 * len(EXPECTED) * len(ROLES)


async def test_a_scoped_person_must_name_an_area_inside_their_own(
    stack: Stack, province: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {province['tokens']['commune_operator']}"}
    unscoped = await stack.client.get("/api/v1/alarms", headers=headers)
    assert unscoped.status_code == 403
    assert unscoped.json()["detail"] == {"missing": "area", "field": "area"}
    mine = await stack.client.get(f"/api/v1/alarms?area={COMMUNE}", headers=headers)
    assert mine.status_code == 200
    others_inbox = await stack.client.get(
        f"/api/v1/inbox?area={province['commune'][OUT]}", headers=headers
    )
    assert others_inbox.status_code == 403
    assert (await stack.client.get("/api/v1/inbox", headers=headers)).status_code == 200
    province_wide = await stack.client.get("/api/v1/broadcasts", headers=headers)
    assert province_wide.status_code == 403
    cancel_theirs = await stack.client.post(
        f"/api/v1/broadcasts/{province['broadcast'][OUT]}/cancel", headers=headers
    )
    assert cancel_theirs.status_code == 403
    # The province's emergency in the commune: not the commune's to stop (issue 18).
    cancel_provinces = await stack.client.post(
        f"/api/v1/broadcasts/{province['broadcast'][IN]}/cancel", headers=headers
    )
    assert cancel_provinces.status_code == 403
    assert cancel_provinces.json()["detail"]["missing"] == "role"
    own = await stack.client.post(
        "/api/v1/broadcasts",
        json={
            "title": "Họp dân",
            "class": "normal",
            "areas": [COMMUNE],
            "bulletin_id": province["bulletin"],
        },
        headers=headers,
    )
    assert own.status_code == 201 and own.json()["level"] == "commune", own.text
    cancel_mine = await stack.client.post(
        f"/api/v1/broadcasts/{own.json()['id']}/cancel", headers=headers
    )
    assert cancel_mine.status_code == 200, cancel_mine.text
    # A province-wide emergency is readable in every commune it sounds in.
    officer = {"Authorization": f"Bearer {province['tokens']['province_officer']}"}
    wide = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Bão", "areas": ["70"], "media_sha256": province["media"]},
        headers=officer,
    )
    assert wide.status_code == 201, wide.text
    seen_here = await stack.client.get(f"/api/v1/broadcasts/{wide.json()['id']}", headers=headers)
    assert seen_here.status_code == 200
    not_theirs_to_stop = await stack.client.post(
        f"/api/v1/broadcasts/{wide.json()['id']}/cancel", headers=headers
    )
    assert not_theirs_to_stop.status_code == 403


def test_no_endpoint_is_without_an_authorisation_rule() -> None:
    app = create_app(Settings(environment="test"))
    # Probes and metrics (internal network only: nginx does not pass them) and sign-in;
    # the console's pages go through the same guard as the API (issue 18).
    public = {"/", "/healthz", "/readyz", "/metrics", "/api/v1/auth/login", "/console/login"}
    unguarded = []
    routes = [r for r in _routes(app.router.routes) if isinstance(r, APIRoute)]
    assert len(routes) > 50
    for route in routes:
        guards = [d.call for d in route.dependant.dependencies if hasattr(d.call, GUARD_MARKER)]
        if not guards and route.path not in public:
            unguarded.append(f"{sorted(route.methods)} {route.path}")
    assert unguarded == []


def _routes(routes: list[Any]) -> list[Any]:
    """Routes, with those of included routers (FastAPI includes them lazily)."""
    found = []
    for route in routes:
        inner = getattr(route, "router", None) or getattr(route, "original_router", None)
        if inner is not None and hasattr(inner, "routes") and not isinstance(route, APIRoute):
            found += _routes(inner.routes)
        else:
            found.append(route)
    return found


async def test_production_refuses_anyone_not_signed_in(
    stack_factory: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await stack_factory(**production_secrets())
    for headers in ({}, {"x-actor": "mallory", "x-role": "admin"}):
        response = await stack.client.get("/api/v1/health?area=70", headers=headers)
        assert response.status_code == 401, response.text
    bogus = await stack.client.get(
        "/api/v1/health?area=70", headers={"Authorization": "Bearer bc_not-a-token"}
    )
    assert bogus.status_code == 401
    health = await stack.client.get("/healthz")
    assert health.status_code == 200
