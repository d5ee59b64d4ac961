"""Every cluster's schedule document lists the standard warnings (docs/protocol.md 11.1):
with URLs signed for that cluster until the document's valid_until, never the bytes; a
change to the library pushes every cluster a new version, promptly."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from core.mqtt import Outgoing
from devstack.broker import Broker
from schedules.push import push_schedules
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack, eventually, listening
from wire import media_auth, protocol

COMMUNE = "25195"


async def pushed(stack: Stack) -> dict[str, dict[str, Any]]:
    """Each cluster's document in this push, by cluster code."""
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
    documents = {}
    for message in out:
        assert message.retain and message.topic.endswith("/schedule")
        document, raw = protocol.parse_signed(protocol.ScheduleDoc, message.payload)
        assert raw["sig"] and message.topic == protocol.schedule_topic(document.cluster)
        documents[document.cluster] = raw
    return documents


def _fetchable(stack: Stack, url: str, code: str, areas: tuple[str, ...]) -> str:
    """The path the cluster fetches: the document's URL with its own proof added."""
    key = media_auth.device_key(stack.settings.media_signing_key, code, "/".join(areas))
    signed = media_auth.device_url(url, code=code, areas=areas, key=key)
    return "/" + signed.split("://", 1)[1].split("/", 1)[1]


async def test_every_cluster_is_pushed_the_library_and_each_change_to_it(
    stack_factory: Callable[..., Awaitable[Stack]], tone_mp3: Path, long_mp3: Path
) -> None:
    stack = await stack_factory(run_jobs_in_api=False)  # the test pushes, nothing else
    province = await small_province(stack)
    short, long = await upload(stack, tone_mp3), await upload(stack, long_mp3)
    assert await pushed(stack) == {}, "no plays, no warnings: nobody needs a document"

    # One commune has a play too: its document holds both, the others the warnings alone.
    bulletin = await approved_bulletin(stack, title="Bản tin sáng", media_sha256=short["sha256"])
    slot = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    local = slot.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).replace(tzinfo=None)
    scheduled = await stack.client.post(
        "/api/v1/schedules",
        json={
            "title": "Bản tin sáng",
            "bulletin_id": bulletin["id"],
            "starts_local": local.isoformat(timespec="seconds"),
            "areas": [COMMUNE],
        },
    )
    assert scheduled.status_code == 201, scheduled.text
    with_plays = await pushed(stack)
    assert set(with_plays) == {s.code for s in province.specs if COMMUNE in s.areas}

    put = await stack.client.put(
        "/api/v1/warnings/flood-evacuate",
        json={"title": "Lũ: sơ tán ngay", "media_sha256": long["sha256"]},
    )
    assert put.status_code == 201, put.text
    first = await pushed(stack)
    assert set(first) == {s.code for s in province.specs}, "every cluster, plays or not"
    for spec in province.specs:
        document = first[spec.code]
        assert len(document["items"]) == (1 if COMMUNE in spec.areas else 0)
        [held] = document["warnings"]
        assert (held["id"], held["title"]) == ("flood-evacuate", "Lũ: sơ tán ngay")
        media = held["media"]
        assert media["sha256"] == long["sha256"] and "data" not in media
        query = parse_qs(urlsplit(media["url"]).query)
        assert query["s"] == [f"c:{spec.code}"], "signed for this cluster alone"
        valid_until = datetime.fromisoformat(document["valid_until"])
        assert int(query["e"][0]) == int(valid_until.timestamp()) + 1
    spec = province.specs[0]
    url = first[spec.code]["warnings"][0]["media"]["url"]
    fetched = await stack.client.get(_fetchable(stack, url, spec.code, spec.areas))
    assert fetched.status_code == 200, fetched.text
    assert hashlib.sha256(fetched.content).hexdigest() == long["sha256"]
    other = next(s for s in province.specs if s.code != spec.code)
    refused = await stack.client.get(_fetchable(stack, url, other.code, other.areas))
    assert refused.status_code == 403, "another cluster cannot use this cluster's grant"

    assert await pushed(stack) == {}, "nothing changed: nothing pushed"

    replaced = await stack.client.put(
        "/api/v1/warnings/flood-evacuate",
        json={"title": "Lũ khẩn cấp: sơ tán", "media_sha256": short["sha256"]},
    )
    assert replaced.status_code == 200, replaced.text
    second = await pushed(stack)
    assert set(second) == set(first)
    for code, document in second.items():
        assert document["version"] > first[code]["version"]
        [held] = document["warnings"]
        assert (held["title"], held["media"]["sha256"]) == (
            "Lũ khẩn cấp: sơ tán",
            short["sha256"],
        )

    deleted = await stack.client.delete("/api/v1/warnings/flood-evacuate")
    assert deleted.status_code == 204, deleted.text
    third = await pushed(stack)
    assert set(third) == set(first), "every cluster told it may drop the warning"
    assert all(d["warnings"] == [] for d in third.values())
    assert all(len(third[c]["items"]) == len(first[c]["items"]) for c in third)


async def test_a_library_change_reaches_the_clusters_at_the_next_tick(
    stack_factory: Callable[..., Awaitable[Stack]], broker: Broker, tone_mp3: Path
) -> None:
    """The periodic push waits SCHEDULE_PUSH_INTERVAL_S; a change to the library kicks it,
    as a schedule change does (the interval here is far longer than the wait)."""
    stack = await stack_factory(schedule_push_interval_s=3600.0)
    province = await small_province(stack)
    clip = await upload(stack, tone_mp3)
    code = province.specs[-1].code
    async with listening(broker, [protocol.schedule_topic(code)]) as (_, documents):
        put = await stack.client.put(
            "/api/v1/warnings/storm-10",
            json={"title": "Bão cấp 10", "media_sha256": clip["sha256"]},
        )
        assert put.status_code == 201, put.text
        found = await eventually(
            lambda: _latest(documents),
            lambda d: d is not None and [w["id"] for w in d["warnings"]] == ["storm-10"],
            timeout=10.0,
            what="the new document on the cluster's retained topic",
        )
        assert found is not None and found["cluster"] == code


async def _latest(documents: list[dict[str, Any]]) -> dict[str, Any] | None:
    return documents[-1] if documents else None
