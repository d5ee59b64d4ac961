"""Replays a cluster must refuse (docs/protocol.md 4.8, what a device keeps across a
reboot): a captured command after the cluster lost power (issue 18: its memory of
command ids was lost on reboot, so a replay inside the command's validity would have
played again; the broker refusing the publish was all that stopped it), and an older
signed schedule (issue 19: it brought back an ended item)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devstack.broker import Broker
from simulator.device import SimulatedCluster
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually
from wire import protocol
from wire.mqtt_lite import LiteClient

COMMUNE = "25216"


async def test_a_replay_after_a_power_cut_is_answered_not_played(
    stack: Stack, broker: Broker, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    province = await small_province(stack)
    [spec] = [s for s in province.online() if COMMUNE in s.areas]
    fleet = fleet_factory([spec], time_compression=20)
    await fleet.start()
    device = fleet.devices[spec.code]
    captured: list[bytes] = []
    answers: list[protocol.Ack] = []

    def heard(topic: str, payload: bytes) -> None:
        if topic == protocol.ack_topic(spec.code):
            answers.append(protocol.parse_ack(payload))
        else:
            captured.append(payload)

    eavesdropper = LiteClient("eavesdropper", heard)
    await eavesdropper.connect(broker.host, broker.port)
    await eavesdropper.subscribe(
        [protocol.area_command_topic(COMMUNE), protocol.ack_topic(spec.code)]
    )

    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, media_sha256=media["sha256"])
    sent = await stack.client.post(
        "/api/v1/broadcasts",
        json={
            "title": "Họp dân",
            "class": "normal",
            "areas": [COMMUNE],
            "bulletin_id": bulletin["id"],
        },
    )
    broadcast = sent.json()["id"]
    await stack.wait_broadcast(broadcast, lambda b: counts(b, "played") == 1)
    assert device.play_counts[broadcast] == 1 and captured

    await device.power_cycle()
    await device.online.wait()
    answered = len(answers)
    eavesdropper.publish(protocol.area_command_topic(COMMUNE), captured[0])
    after = await eventually(
        lambda: _value(answers[answered:]),
        bool,
        what="the rebooted cluster answering the replay",
    )
    # Answered with where it stands (played), not fetched and played again.
    assert after[0].stage is protocol.AckStage.PLAYED
    assert device.play_counts[broadcast] == 1
    assert device.reboots == 1
    eavesdropper.drop()


async def _value(acks: list[protocol.Ack]) -> list[protocol.Ack]:
    return list(acks)


async def test_an_older_schedule_replayed_is_refused(
    stack: Stack, broker: Broker, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    """Issue 19: a cluster took any schedule version other than the one it held, so a
    replayed older signed schedule brought back an ended item."""
    province = await small_province(stack)
    [spec] = [s for s in province.online() if COMMUNE in s.areas]
    fleet = fleet_factory([spec], time_compression=20)
    await fleet.start()
    device = fleet.devices[spec.code]
    documents: list[bytes] = []
    eavesdropper = LiteClient("eavesdropper", lambda _t, payload: documents.append(payload))
    await eavesdropper.connect(broker.host, broker.port)
    await eavesdropper.subscribe([protocol.schedule_topic(spec.code)])

    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, media_sha256=media["sha256"])
    starts = (datetime.now(UTC) + timedelta(hours=2)).replace(tzinfo=None, microsecond=0)
    saved = await stack.client.post(
        "/api/v1/schedules",
        json={
            "title": "Tin sáng",
            "bulletin_id": bulletin["id"],
            "starts_local": starts.isoformat(),
            "rule": "FREQ=DAILY",
            "areas": [COMMUNE],
        },
    )
    assert saved.status_code == 201, saved.text
    await eventually(lambda: _items(device), bool, what="the schedule held")
    first = device.schedule.version
    ended = await stack.client.patch(
        f"/api/v1/schedules/{saved.json()['id']}", json={"status": "ended"}
    )
    assert ended.status_code == 200
    await eventually(lambda: _items(device), lambda items: not items, what="the end held")
    latest = device.schedule.version
    assert latest > first
    old = next(
        d for d in documents if protocol.parse_signed(protocol.ScheduleDoc, d)[0].version == first
    )
    eavesdropper.publish(protocol.schedule_topic(spec.code), old, retain=False)
    await eventually(
        lambda: _value_of(device.rejected),
        lambda notes: f"schedule: old version {first}" in notes,
        what="the replayed schedule refused",
    )
    assert device.schedule.version == latest and not device.schedule.items
    eavesdropper.drop()


async def _items(device: SimulatedCluster) -> list[str]:
    return list(device.schedule.items)


async def _value_of(notes: list[str]) -> list[str]:
    return list(notes)
