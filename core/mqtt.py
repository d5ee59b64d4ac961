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
from core.topics import TopicRouter
from wire import protocol
from wire.mqtt_lite import LiteClient, MqttLiteError

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
    """Owns the broker connections; routes device messages by topic filter to
    synchronous, non-blocking handlers.

    Two connections: aiomqtt publishes (commands, with PUBACK tracking), and a lean
    receiver holds the shared subscriptions. paho, under aiomqtt, handles one packet per
    event-loop turn and costs 70 to 80 us per message; when a province acknowledges at
    once, the receiver drains what each socket read delivered instead
    (docs/benchmarks.md has the figures).
    """

    def __init__(
        self,
        settings: Settings,
        routes: dict[str, MessageHandler],
        *,
        on_connect: Callable[[], Sequence[Outgoing]] = lambda: (),
    ) -> None:
        self._settings = settings
        self._routes = routes  # topic filter (no $share prefix) -> handler
        # By the whole filter, not the last level: bc/v1/cluster/x/y/status is no
        # cluster's status, though it ends like one.
        self._router = TopicRouter(routes)
        # Retained state to (re)publish on every connect: a broker without persistence
        # forgets it when it restarts.
        self._on_connect = on_connect
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._receiving = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._receiver_task: asyncio.Task[None] | None = None
        self.identifier = f"control-{uuid.uuid4().hex[:12]}"
        self.reconnects = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")
        if self._routes:
            self._receiver_task = asyncio.create_task(self._receive(), name="mqtt-receiver")
        else:
            self._receiving.set()

    async def stop(self) -> None:
        await cancel_and_wait(self._receiver_task)
        await cancel_and_wait(self._task)
        self._task = self._receiver_task = None

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(
            asyncio.gather(self._connected.wait(), self._receiving.wait()), timeout
        )

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and self._receiving.is_set()

    async def _receive(self) -> None:
        """Hold the shared subscriptions on a lean connection, reconnecting forever."""
        settings = self._settings
        filters = [protocol.shared(settings.share_group, f) for f in self._routes]
        while True:
            client = LiteClient(
                f"{self.identifier}-rx",
                self._dispatch,
                keepalive=KEEPALIVE_S,
                username=settings.mqtt_username,
                password=settings.mqtt_password,
            )
            try:
                await client.connect(
                    settings.mqtt_host, settings.mqtt_port, tls=settings.mqtt_tls()
                )
                refused = await client.subscribe(filters, qos=protocol.QOS)
                if refused:
                    # The broker's access rules leave the control plane deaf to these:
                    # a deployment error that nothing else would show.
                    log.error("mqtt: the broker refused the subscriptions %s", refused)
                self._receiving.set()
                await client.closed.wait()
                log.warning("mqtt receiver lost its connection")
            except (OSError, TimeoutError, MqttLiteError) as exc:
                log.warning("mqtt receiver cannot connect (%s)", exc)
            finally:
                self._receiving.clear()
                client.drop()
            self.reconnects += 1
            await asyncio.sleep(RECONNECT_INTERVAL_S)

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self._settings.mqtt_host,
                    self._settings.mqtt_port,
                    username=self._settings.mqtt_username,
                    password=self._settings.mqtt_password,
                    tls_context=self._settings.mqtt_tls(),
                    identifier=self.identifier,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    keepalive=KEEPALIVE_S,
                    max_inflight_messages=MAX_INFLIGHT,
                ) as client:
                    client.pending_calls_threshold = 2 * PUBLISH_SLICE  # we bound it ourselves
                    self._client = client
                    self._connected.set()
                    republish = asyncio.create_task(self._republish(), name="mqtt-republish")
                    log.info(
                        "mqtt connected to %s:%s",
                        self._settings.mqtt_host,
                        self._settings.mqtt_port,
                    )
                    # Nothing is subscribed here; iterating keeps the connection serviced and
                    # raises MqttError when it drops.
                    try:
                        async for _message in client.messages:
                            pass
                    finally:
                        await cancel_and_wait(republish)
            except aiomqtt.MqttError as exc:
                self._connected.clear()
                self._client = None
                self.reconnects += 1
                log.warning("mqtt connection lost (%s); retrying in %ss", exc, RECONNECT_INTERVAL_S)
                await asyncio.sleep(RECONNECT_INTERVAL_S)

    async def _republish(self) -> None:
        try:
            await self.publish_many(self._on_connect())
        except aiomqtt.MqttError as exc:
            log.warning("could not republish retained state (%s)", exc)

    def _dispatch(self, topic: str, payload: bytes) -> None:
        handler = self._router.route(topic)
        if handler is None:
            log.debug("no route for %s", topic)
            return
        handler(topic, payload)

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
