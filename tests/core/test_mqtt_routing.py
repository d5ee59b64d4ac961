"""The control plane's MQTT service, on a real broker, hands a message to the route whose
whole filter matches it: a status on a topic outside the device topics is not taken for a
cluster's status because it ends like one (routing by the last level did)."""

from __future__ import annotations

import uuid

from core.mqtt import MqttService
from core.settings import Settings
from devstack.broker import Broker
from tests.support import eventually
from wire import protocol
from wire.mqtt_lite import LiteClient

CODE = f"routing-{uuid.uuid4().hex[:8]}"
STRANGERS = (f"other/v1/cluster/{CODE}/status", f"bc/v1/cluster/{CODE}/y/status")


async def test_a_status_outside_the_device_topics_is_not_applied(broker: Broker) -> None:
    applied: list[str] = []
    elsewhere: list[str] = []
    settings = Settings(
        environment="test",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_share_group=f"g{uuid.uuid4().hex[:8]}",
        secret_key=uuid.uuid4().hex + uuid.uuid4().hex,
    )
    # Subscribed besides the device topics (as a bridge or a later feature might be), so
    # the broker does deliver the strangers: what they reach is the router's choice.
    service = MqttService(
        settings,
        {
            protocol.STATUS_FILTER: lambda topic, _payload: applied.append(topic),
            "other/#": lambda topic, _payload: elsewhere.append(topic),
            "bc/v1/cluster/+/+/status": lambda topic, _payload: elsewhere.append(topic),
        },
    )
    device = LiteClient(f"routing-{uuid.uuid4().hex[:8]}", lambda _t, _p: None)
    await service.start()
    try:
        await service.wait_connected(10)
        await device.connect(broker.host, broker.port)
        status = protocol.Status(cluster=CODE, online=True).to_json()
        for topic in (*STRANGERS, protocol.status_topic(CODE)):
            device.publish(topic, status, qos=1)

        async def ours() -> tuple[list[str], list[str]]:
            # The session's broker also holds earlier tests' retained statuses.
            return [t for t in applied if CODE in t], [t for t in elsewhere if CODE in t]

        await eventually(ours, lambda s: len(s[0]) + len(s[1]) >= 3, what="all three routed")
        applied_here, elsewhere_here = await ours()
        assert applied_here == [protocol.status_topic(CODE)]
        assert sorted(elsewhere_here) == sorted(STRANGERS)
    finally:
        await device.disconnect()
        await service.stop()
