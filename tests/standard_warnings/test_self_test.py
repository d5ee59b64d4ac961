"""A cluster whose self-test finds a standard warning missing and cannot fetch it again
answers `failed`, "standard warning {id} not held" (docs/protocol.md 11.1): the control
plane pushes it a new document, with fresh grants; any other failure does not."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack.broker import Broker
from tests.broadcast.helpers import upload
from tests.factories import small_province
from tests.standard_warnings.test_held_on_the_clusters import pushed
from tests.support import Stack, eventually, listening
from wire import protocol
from wire.mqtt_lite import LiteClient

COMMUNE = "25216"


async def test_a_warning_not_held_gets_the_cluster_a_new_document(
    stack_factory: Callable[..., Awaitable[Stack]], broker: Broker, tone_mp3: Path
) -> None:
    stack = await stack_factory(run_jobs_in_api=False)  # the test pushes, nothing else
    province = await small_province(stack, clusters_per_commune=2)
    clip = await upload(stack, tone_mp3)
    put = await stack.client.put(
        "/api/v1/warnings/flood-evacuate",
        json={"title": "Lũ: sơ tán ngay", "media_sha256": clip["sha256"]},
    )
    assert put.status_code == 201, put.text
    first = await pushed(stack)
    assert len(first) == len(province.specs)

    started = await stack.client.post("/api/v1/self-test")
    assert started.status_code == 201, started.text
    operation = started.json()["operation_id"]
    unheld, broken = province.code(COMMUNE, 1), province.code(COMMUNE, 2)
    async with listening(broker, [], "cluster") as (cluster, _):
        for code, reason in (
            (unheld, protocol.warning_not_held("flood-evacuate")),
            (broken, "amplifier does not answer"),
        ):
            _answer_failed(cluster, operation, code, reason)
        await eventually(
            lambda: _failures(stack),
            lambda found: set(found) == {unheld, broken},
            what="both failures recorded",
        )

    again = await pushed(stack)
    assert set(again) == {unheld}, "only the cluster that could not fetch a warning"
    assert again[unheld]["version"] > first[unheld]["version"]
    assert [w["id"] for w in again[unheld]["warnings"]] == ["flood-evacuate"]
    # Its grants run from this push (a second later at least, in real use a day or more).
    assert again[unheld]["valid_until"] >= first[unheld]["valid_until"]
    assert await pushed(stack) == {}, "once"


def _answer_failed(cluster: LiteClient, operation: str, code: str, reason: str) -> None:
    """The self-test answered `failed` with `reason`, as the device `code` would."""
    ack = {
        "v": 1,
        "cmd": str(uuid.uuid4()),
        "broadcast": operation,
        "cluster": code,
        "stage": "failed",
        "at": datetime.now(UTC).isoformat(),
        "reason": reason,
    }
    cluster.publish(protocol.ack_topic(code), json.dumps(ack).encode())


async def _failures(stack: Stack) -> dict[str, str]:
    response = await stack.client.get("/api/v1/self-test/report", params={"area": COMMUNE})
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return {
        f["cluster"]: f["reason"]
        for commune in report["communes"]
        for f in commune["clusters"]
        if f["state"] == "failed"
    }


async def test_the_new_document_follows_the_failure_at_once(
    stack_factory: Callable[..., Awaitable[Stack]], broker: Broker, tone_mp3: Path
) -> None:
    """Not at the next periodic push (an hour here): the failure kicks it, as a change to
    the library does."""
    stack = await stack_factory(schedule_push_interval_s=3600.0)
    province = await small_province(stack)
    clip = await upload(stack, tone_mp3)
    code = province.code(COMMUNE)
    async with listening(broker, [protocol.schedule_topic(code)], "cluster") as (
        cluster,
        documents,
    ):
        put = await stack.client.put(
            "/api/v1/warnings/flood-evacuate",
            json={"title": "Lũ: sơ tán ngay", "media_sha256": clip["sha256"]},
        )
        assert put.status_code == 201, put.text
        first = await eventually(
            lambda: _latest(documents),
            lambda d: d is not None and d["warnings"] != [],
            what="the document listing the warning",
        )
        assert first is not None
        operation = (await stack.client.post("/api/v1/self-test")).json()["operation_id"]
        _answer_failed(cluster, operation, code, protocol.warning_not_held("flood-evacuate"))
        await eventually(
            lambda: _latest(documents),
            lambda d: d is not None and d["version"] > first["version"],
            timeout=10.0,
            what="a new document for the cluster",
        )


async def _latest(documents: list[dict[str, Any]]) -> dict[str, Any] | None:
    return documents[-1] if documents else None
