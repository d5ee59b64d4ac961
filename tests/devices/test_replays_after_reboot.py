"""A captured command replayed after the cluster lost power: it must not sound twice
(docs/protocol.md 4.8, what a device keeps across a reboot). Issue 18: the clusters'
memory of command ids was lost on reboot, so a replay inside a command's validity would
have played again; the broker refusing the publish was all that stopped it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.broker import Broker
from devices import protocol
from devices.mqtt_lite import LiteClient
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually

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
