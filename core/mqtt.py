"""The control plane's one long-lived MQTT client: reconnects, routes, publishes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.settings import Settings
from core.tasks import cancel_and_wait
from devices import protocol

log = logging.getLogger(__name__)

RECONNECT_INTERVAL_S = 1.0  # the broker restarting must not leave us deaf for long
KEEPALIVE_S = 30
# paho holds at most this many unacknowledged QoS 1 publishes on the wire; a province-wide
# resend wave queues the rest locally instead of waiting on each.
MAX_INFLIGHT = 1000
# aiomqtt walks its pending-call list on every PUBACK, so awaiting thousands of publishes at
# once costs quadratic CPU; publish in bounded slices instead.
PUBLISH_SLICE = 200

MessageHandler = Callable[[str, bytes], None]


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: bytes
    expiry_s: int | None = None
    retain: bool = False


class MqttService:
    """Owns the client; routes device messages by topic to synchronous, non-blocking handlers."""

    def __init__(self, settings: Settings, routes: dict[str, MessageHandler]) -> None:
        self._settings = settings
        self._routes = routes  # topic filter (no $share prefix) -> handler
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.identifier = f"control-{uuid.uuid4().hex[:12]}"
        self.reconnects = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mqtt-service")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self._settings.mqtt_host,
                    self._settings.mqtt_port,
                    username=self._settings.mqtt_username,
                    password=self._settings.mqtt_password,
                    identifier=self.identifier,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    keepalive=KEEPALIVE_S,
                    max_inflight_messages=MAX_INFLIGHT,
                ) as client:
                    client.pending_calls_threshold = 2 * PUBLISH_SLICE  # we bound it ourselves
                    self._client = client
                    for topic_filter in self._routes:
                        group = self._settings.mqtt_share_group
                        await client.subscribe(
                            protocol.shared(group, topic_filter), qos=protocol.QOS
                        )
                    self._connected.set()
                    log.info(
                        "mqtt connected to %s:%s",
                        self._settings.mqtt_host,
                        self._settings.mqtt_port,
                    )
                    async for message in client.messages:
                        self._dispatch(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                self._connected.clear()
                self._client = None
                self.reconnects += 1
                log.warning("mqtt connection lost (%s); retrying in %ss", exc, RECONNECT_INTERVAL_S)
                await asyncio.sleep(RECONNECT_INTERVAL_S)

    def _dispatch(self, topic: str, payload: object) -> None:
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        suffix = topic.rsplit("/", 1)[-1]
        for topic_filter, handler in self._routes.items():
            if topic_filter.endswith("/" + suffix):
                handler(topic, data)
                return
        log.debug("no route for %s", topic)

    async def publish_many(self, messages: Sequence[Outgoing]) -> None:
        """Publish QoS 1 messages, waiting for the broker's PUBACKs in bounded slices."""
        client = self._client
        if client is None:
            raise aiomqtt.MqttError("not connected to the broker")
        for start in range(0, len(messages), PUBLISH_SLICE):
            await asyncio.gather(
                *(
                    client.publish(
                        m.topic,
                        m.payload,
                        qos=protocol.QOS,
                        retain=m.retain,
                        properties=_expiry(m.expiry_s),
                    )
                    for m in messages[start : start + PUBLISH_SLICE]
                )
            )


def _expiry(seconds: int | None) -> Properties | None:
    if seconds is None:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = seconds
    return props
