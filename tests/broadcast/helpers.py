from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcast.commands import Content
from broadcast.models import Delivery, DeliveryEvent
from core.database import session_scope
from devstack.seed import BEFORE_REFORM, seed_demo
from simulator.fleet import Fleet
from simulator.provisioning import fetch_specs
from simulator.spec import DeviceSpec
from tests.factories import small_province
from tests.support import Stack


async def seed_province(stack: Stack) -> list[DeviceSpec]:
    """The whole demo province as it was before the reform (old Bình Phước, 70), whose
    districts and communes the tests name."""
    async with stack.runtime.writing() as session:
        await seed_demo(session, stack.runtime.clock, as_of=BEFORE_REFORM)
    return await fetch_specs(stack.settings.public_base_url)


async def upload(stack: Stack, path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        response = await stack.client.post("/api/v1/media", files={"file": (path.name, f)})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def watch_inline(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """What each play's `media.data` is from now on, in order (None: not carried)."""
    dispatcher = stack.runtime.require_dispatcher()
    carried: list[str | None] = []
    inline_data = dispatcher.inline_data

    async def watched(content: Content) -> str | None:
        carried.append(found := await inline_data(content))
        return found

    monkeypatch.setattr(dispatcher, "inline_data", watched)
    return carried


async def send(stack: Stack, **body: Any) -> dict[str, Any]:
    body.setdefault("title", "Cảnh báo lũ khẩn cấp")
    response = await stack.client.post("/api/v1/broadcasts", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def event_counts(stack: Stack, broadcast_id: str) -> dict[str, int]:
    """How many recorded transitions of each kind, straight from the event log."""
    async with session_scope(stack.runtime.sessions) as session:
        rows = await session.execute(
            select(DeliveryEvent.state, func.count())
            .join(Delivery, DeliveryEvent.delivery_id == Delivery.id)
            .where(Delivery.broadcast_id == broadcast_id)
            .group_by(DeliveryEvent.state)
        )
        return {state: n for state, n in rows.all()}


EDITOR = {"x-actor": "bien.tap.vien", "x-role": "editor"}


async def approved_bulletin(stack: Stack, **fields: Any) -> dict[str, Any]:
    """A bulletin written (by the development administrator), submitted and approved by
    the editorial board: what a normal or priority broadcast must name."""
    fields.setdefault("title", "Bản tin")
    created = await stack.client.post("/api/v1/bulletins", json=fields)
    assert created.status_code == 201, created.text
    bulletin_id = created.json()["id"]
    submitted = await stack.client.post(f"/api/v1/bulletins/{bulletin_id}/submit")
    assert submitted.status_code == 200, submitted.text
    approved = await stack.client.post(f"/api/v1/bulletins/{bulletin_id}/approve", headers=EDITOR)
    assert approved.status_code == 200, approved.text
    data: dict[str, Any] = approved.json()
    return data


@dataclass
class CommuneHeard:
    """A small province (two clusters and an e-board a commune, and each commune's "-09"),
    one commune's devices online, one emergency played by all of them."""

    everyone: list[DeviceSpec]
    specs: list[DeviceSpec]
    fleet: Fleet
    media: dict[str, Any]
    sent: dict[str, Any]


async def a_commune_hears_an_emergency(
    stack: Stack, fleet_factory: Callable[..., Fleet], clip: Path, commune: str
) -> CommuneHeard:
    province = await small_province(stack, clusters_per_commune=2, eboards=True)
    everyone, specs = province.specs, province.of(commune)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    media = await upload(stack, clip)
    sent = await send(stack, areas=[commune], media_sha256=media["sha256"])
    await stack.wait_broadcast(sent["id"], lambda b: b["counts"].get("played", 0) == len(specs))
    return CommuneHeard(everyone, specs, fleet, media, sent)
