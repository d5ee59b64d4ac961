"""Bad input gets a clear error and loses nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from broadcast.models import Delivery
from core.database import session_scope
from simulator.fleet import Fleet
from tests.broadcast.helpers import send, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually
from wire import protocol
from wire.mqtt_lite import LiteClient


async def _ingest(stack: Stack) -> dict[str, Any]:
    data: dict[str, Any] = (await stack.client.get("/api/v1/ingest")).json()
    return data


async def test_malformed_and_unknown_device_messages_are_counted_and_ingest_goes_on(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = (await small_province(stack)).of("25216")  # two clusters, both run here
    fleet = fleet_factory(specs)
    await fleet.start()
    media = await upload(stack, tone_mp3)
    sent = await send(stack, areas=["25216"], media_sha256=media["sha256"])
    real = specs[0].code

    rogue = LiteClient("rogue", lambda _t, _p: None)
    await rogue.connect(stack.settings.mqtt_host, stack.settings.mqtt_port)
    bad = [
        (protocol.ack_topic(real), b"{not json"),
        (protocol.ack_topic(real), b'{"v": 1, "cmd": "x"}'),
        (protocol.ack_topic(real), b'{"v": 99, "cmd": "x", "broadcast": "b", "cluster": "c"}'),
        (
            protocol.ack_topic("NO-SUCH-CLUSTER"),
            protocol.Ack(
                cmd=sent["id"],
                broadcast=sent["id"],
                cluster="NO-SUCH-CLUSTER",
                stage=protocol.AckStage.PLAYED,
                at=protocol.utc_now(),
            ).to_json(),
        ),
        (
            protocol.ack_topic(real),
            protocol.Ack(
                cmd="forged",
                broadcast="no-such-broadcast",
                cluster=real,
                stage=protocol.AckStage.PLAYED,
                at=protocol.utc_now(),
            ).to_json(),
        ),
        (
            protocol.ack_topic(real),  # a cluster speaking for another
            protocol.Ack(
                cmd="x",
                broadcast=sent["id"],
                cluster=specs[1].code,
                stage=protocol.AckStage.PLAYED,
                at=protocol.utc_now(),
            ).to_json(),
        ),
        (protocol.status_topic(real), b"\xff\xfe garbage"),
        (
            protocol.heartbeat_topic("NO-SUCH-CLUSTER"),
            protocol.Heartbeat(cluster="NO-SUCH-CLUSTER", at=protocol.utc_now()).to_json(),
        ),
    ]
    for topic, payload in bad:
        future = rogue.publish(topic, payload)
        assert future is not None
        await future
    await rogue.disconnect()

    stats = await eventually(
        lambda: _ingest(stack),
        lambda s: (
            s["counts"].get("malformed", 0) >= 4
            and s["counts"].get("unknown_device", 0) >= 2
            and s["counts"].get("unknown_command", 0) >= 1
            and s["counts"].get("topic_mismatch", 0) >= 1
        ),
        what="every bad message counted",
    )
    assert stats["counts"]["malformed"] == 4
    reasons = " ".join(r["reason"] for r in stats["recent_rejects"])
    assert "NO-SUCH-CLUSTER" in reasons and "no-such-broadcast" in reasons

    done = await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(specs))
    assert done["confirmed"] == len(specs), "the real acks around the garbage were all kept"


async def test_the_simulated_cluster_rejects_expired_and_misaddressed_commands(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await small_province(stack)).of("25216")[:1]
    fleet = fleet_factory(specs)
    await fleet.start()
    device = fleet.devices[specs[0].code]
    acks: list[protocol.Ack] = []
    listener = LiteClient("listener", lambda _t, p: acks.append(protocol.parse_ack(p)))
    await listener.connect(stack.settings.mqtt_host, stack.settings.mqtt_port)
    await listener.subscribe([protocol.ack_topic(device.spec.code)])

    now = protocol.utc_now()
    from datetime import timedelta

    def command(cid: str, **kw: Any) -> bytes:
        body = {
            "id": cid,
            "kind": "play",
            "broadcast": f"b-{cid}",
            "class": "emergency",
            "issued_at": now,
            "expires_at": now + timedelta(minutes=5),
            "target": {"cluster": device.spec.code},
            **kw,
        }
        command = protocol.Command.model_validate(body)
        return stack.settings.signer.sign_json(protocol.wire_object(command))

    topic = protocol.cluster_command_topic(device.spec.code)
    for payload in (
        command("old", expires_at=now - timedelta(seconds=1)),
        command("elsewhere", target={"cluster": "SOMEONE-ELSE"}),
        b"{garbage",
    ):
        future = listener.publish(topic, payload)
        assert future is not None
        await future
    got = await eventually(lambda: _acks(acks), lambda a: len(a) >= 2, what="two rejected acks")
    assert {(a.cmd, a.stage, a.reason) for a in got} == {
        ("old", protocol.AckStage.REJECTED, "expired"),
        ("elsewhere", protocol.AckStage.REJECTED, "misaddressed"),
    }
    await eventually(
        lambda: _rejected(device.rejected),
        lambda r: any(x.startswith("malformed") for x in r),
        what="the device to log the malformed command",
    )
    await listener.disconnect()


async def _acks(acks: list[protocol.Ack]) -> list[protocol.Ack]:
    return list(acks)


async def _rejected(rejected: list[str]) -> list[str]:
    return list(rejected)


async def test_corrupt_media_is_a_failed_delivery_with_the_reason(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    from simulator.spec import Faults

    speakers = (await small_province(stack)).speakers("25216")
    fleet = fleet_factory(speakers, faults=Faults(media_corrupt=1.0))
    await fleet.start()
    media = await upload(stack, tone_mp3)
    sent = await send(stack, clusters=[s.code for s in speakers], media_sha256=media["sha256"])
    done = await stack.wait_broadcast(sent["id"], lambda b: counts(b, "failed") == len(speakers))
    assert done["confirmed"] == 0
    assert done["target_clusters"] == sorted(s.code for s in speakers)
    async with session_scope(stack.runtime.sessions) as session:
        reasons = await session.scalars(
            select(Delivery.reason).where(Delivery.broadcast_id == sent["id"]).distinct()
        )
        assert list(reasons) == ["media sha256 mismatch"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "areas": ["70"]}, "body"),  # neither media nor stream
        ({"title": "x", "stream_url": "http://h/s"}, "body"),  # no target
        ({"title": "", "areas": ["70"], "stream_url": "http://h/s"}, "title"),
        ({"title": "x", "areas": ["70"], "stream_url": "not a url"}, "stream_url"),
        ({"title": "x", "areas": ["70"], "stream_url": "http://h/s", "class": "urgent"}, "class"),
        ({"title": "x", "areas": ["bad code"], "stream_url": "http://h/s"}, "areas.0"),
        ({"title": "x", "areas": ["70"], "media_sha256": "abc"}, "media_sha256"),
        ({"title": "x", "areas": ["70"], "stream_url": "http://h/s", "repeat": 0}, "repeat"),
    ],
)
async def test_broadcast_validation_errors_name_the_field(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    response = await stack.client.post("/api/v1/broadcasts", json=body)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["detail"]} or field == "body"


async def test_unknown_targets_are_404_naming_them(stack: Stack, tone_mp3: Path) -> None:
    await small_province(stack)
    for body, name in (
        ({"areas": ["70", "99999"], "stream_url": "http://h/s"}, "99999"),
        ({"clusters": ["NOPE-1"], "stream_url": "http://h/s"}, "NOPE-1"),
        ({"areas": ["70"], "media_sha256": "a" * 64}, "a" * 64),
    ):
        response = await stack.client.post("/api/v1/broadcasts", json={"title": "x", **body})
        assert response.status_code == 404, response.text
        assert name in response.json()["error"]
    assert (await stack.client.get("/api/v1/broadcasts/nope")).status_code == 404
    total = (await stack.client.get("/api/v1/broadcasts")).json()["total"]
    assert total == 0, "a refused broadcast left a row behind"


async def test_clusters_and_areas_with_broadcast_history_cannot_be_deleted(stack: Stack) -> None:
    specs = (await small_province(stack)).of("25216")
    sent = await send(stack, areas=["25216"], stream_url="http://127.0.0.1:9/radio")
    code = specs[0].code
    response = await stack.client.delete(f"/api/v1/clusters/{code}")
    assert response.status_code == 409 and "history" in response.json()["error"]
    # Move every cluster away: the commune is empty but its broadcast log still points to it.
    for spec in specs:
        moved = await stack.client.patch(f"/api/v1/clusters/{spec.code}", json={"area_code": "689"})
        assert moved.status_code == 200
    response = await stack.client.delete("/api/v1/areas/25216")
    assert response.status_code == 409 and "history" in response.json()["error"]
    after = await stack.broadcast(sent["id"])
    assert after["total"] == len(specs)
    assert [a["area_code"] for a in after["areas"]] == ["689"]
