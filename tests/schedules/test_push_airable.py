"""The schedule a cluster holds (protocol 11) carries only what firing would air: once
its bulletin is archived, or past its validity, the slot leaves the clusters' documents
at the next push, so a cluster cut off from the network does not play it from storage."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.mqtt import Outgoing
from schedules.push import push_schedules
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack

COMMUNE = "25195"


async def pushed(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Each cluster's document in this push: its items, by cluster code."""
    out: list[Outgoing] = []

    async def publish(messages: list[Outgoing]) -> None:
        out.extend(messages)

    await push_schedules(
        sessions=stack.runtime.sessions,
        clock=stack.runtime.clock,
        settings=stack.settings,
        writing=stack.runtime.writing,
        publish=publish,
    )
    return {
        m.topic.split("/")[-2]: json.loads(m.payload)["items"]
        for m in out
        if m.topic.endswith("/schedule")
    }


async def test_an_archived_bulletins_slots_leave_the_clusters_schedules(
    stack_factory: Callable[..., Awaitable[Stack]], tone_mp3: Path
) -> None:
    stack = await stack_factory(run_jobs_in_api=False)  # the test pushes, nothing else
    await small_province(stack)
    clip = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, title="Bản tin sáng", media_sha256=clip["sha256"])
    slot = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    local = slot.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).replace(tzinfo=None)
    created = await stack.client.post(
        "/api/v1/schedules",
        json={
            "title": "Bản tin sáng",
            "bulletin_id": bulletin["id"],
            "starts_local": local.isoformat(timespec="seconds"),
            "areas": [COMMUNE],
        },
    )
    assert created.status_code == 201, created.text

    first = await pushed(stack)
    held = first[f"{COMMUNE}-01"]
    assert len(held) == 1 and held[0]["title"] == "Bản tin sáng"

    archived = await stack.client.post(f"/api/v1/bulletins/{bulletin['id']}/archive", json={})
    assert archived.status_code == 200, archived.text
    second = await pushed(stack)
    assert second[f"{COMMUNE}-01"] == [], "a new version without the slot"
