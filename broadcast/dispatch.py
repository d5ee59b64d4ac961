"""Publishing commands: the first fan-out, cancels, and re-sends with backoff."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiomqtt import MqttError
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast import repository
from broadcast.commands import (
    Content,
    MediaSet,
    cancel_command,
    fan_out_targets,
    play_command,
    url_signer,
)
from broadcast.models import Broadcast
from broadcast.states import DeliveryState
from core.backoff import resend_delay_s
from core.clock import Clock
from core.mqtt import MqttService, Outgoing
from core.settings import Settings
from media import service as media_service
from media.models import MediaFile
from wire import protocol
from wire.protocol import Command, Target

log = logging.getLogger(__name__)

RESEND_BATCH = 5000  # per sweep; a province's worth, so a reconnect storm drains in seconds


class Dispatcher:
    def __init__(self, mqtt: MqttService, settings: Settings, clock: Clock) -> None:
        self._mqtt = mqtt
        self._settings = settings
        self._clock = clock

    def _outgoing(self, topic: str, command: Command) -> Outgoing:
        expiry = protocol.message_expiry_s(command.expires_at, self._clock.now())
        payload = self._settings.signer.sign_json(protocol.wire_object(command))
        return Outgoing(topic, payload, expiry_s=expiry)

    def _play(self, broadcast: Broadcast, content: Content, target: Target) -> Command:
        # Media URLs are good until the broadcast expires, and only for this target.
        url_for = url_signer(self._settings.media_url, broadcast.expires_at)
        live_url_for = url_signer(self._settings.live_url, broadcast.expires_at)
        return play_command(broadcast, content, target, url_for=url_for, live_url_for=live_url_for)

    async def publish_plays(self, plays: list[tuple[Broadcast, Content]]) -> bool:
        """Publish committed broadcasts at once; False if the broker did not take it all."""
        return await self._after_commit(
            [broadcast for broadcast, _ in plays],
            [
                self._outgoing(topic, self._play(broadcast, content, target))
                for broadcast, content in plays
                for topic, target in fan_out_targets(broadcast)
            ],
        )

    async def publish_commands(self, label: str, publications: list[tuple[str, Command]]) -> bool:
        """Publish committed commands of another kind (device operations), signed; False
        if the broker did not take them all."""
        try:
            await self._mqtt.publish_many([self._outgoing(t, c) for t, c in publications])
        except MqttError as exc:
            log.warning("%s: broker unavailable (%s)", label, exc)
            return False
        return True

    async def publish_cancel(self, broadcast: Broadcast) -> bool:
        """Publish a committed cancel; False if the broker did not take it all."""
        now = self._clock.now()
        return await self._after_commit(
            [broadcast],
            [
                self._outgoing(topic, cancel_command(broadcast, target, now))
                for topic, target in fan_out_targets(broadcast)
            ],
        )

    async def _after_commit(self, broadcasts: list[Broadcast], messages: list[Outgoing]) -> bool:
        """What is committed is already owed to the clusters: if the broker is down, the
        sweep sends it when it returns. So a failure here is reported, never raised (an
        error would make a duty officer press the button twice)."""
        try:
            await self._mqtt.publish_many(messages)
        except MqttError as exc:
            log.warning(
                "broadcast %s: broker unavailable (%s); the sweep will send it",
                ", ".join(b.id for b in broadcasts),
                exc,
            )
            return False
        return True

    async def plan_resends(self, session: AsyncSession) -> list[Outgoing]:
        """Pick what is due, book the next attempt, and return the messages to publish.

        The booking is committed before anything is published (the caller publishes after
        its transaction): a crash in between only delays that attempt by one backoff step,
        and no lock or transaction is held while the broker is slow.
        """
        now = self._clock.now()
        rows = await repository.due_for_resend(session, now=now, limit=RESEND_BATCH)
        outgoing: list[Outgoing] = []
        reschedule: list[tuple[int, dict[str, object]]] = []
        queued: list[int] = []
        contents: dict[str, Content] = {}
        for delivery, code, broadcast in rows:
            target = Target(cluster=code)
            if delivery.state == DeliveryState.CANCELED:
                command = cancel_command(broadcast, target, now)
            else:
                if broadcast.id not in contents:
                    contents[broadcast.id] = await content_of(session, broadcast)
                command = self._play(broadcast, contents[broadcast.id], target)
            outgoing.append(self._outgoing(protocol.cluster_command_topic(code), command))
            attempts = delivery.attempts + 1
            delay = timedelta(seconds=resend_delay_s(attempts, self._settings))
            reschedule.append((delivery.id, {"attempts": attempts, "next_attempt_at": now + delay}))
            if delivery.state == DeliveryState.QUEUED:
                queued.append(delivery.id)
        await repository.update_columns(session, reschedule)
        await repository.mark_sent(session, delivery_ids=queued, broadcast_id=None, at=now)
        return outgoing

    async def publish(self, messages: list[Outgoing]) -> None:
        await self._mqtt.publish_many(messages)


async def load_content(
    session: AsyncSession, *, media_sha256: str | None, image_sha256: str | None
) -> Content:
    """The files a command names (a broadcast's, or a stored schedule item's), with the
    audio's other renditions."""
    audio = None
    if media_sha256:
        media = await session.get(MediaFile, media_sha256)
        if media is not None:
            audio = MediaSet(media, await media_service.alternates(session, media))
    image = await session.get(MediaFile, image_sha256) if image_sha256 else None
    return Content(audio, image)


async def content_of(session: AsyncSession, broadcast: Broadcast) -> Content:
    return await load_content(
        session, media_sha256=broadcast.media_sha256, image_sha256=broadcast.image_sha256
    )
