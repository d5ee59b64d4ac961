"""Publishing commands: the first fan-out, cancels, and re-sends with backoff."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from aiomqtt import MqttError
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast import repository
from broadcast.commands import (
    Content,
    MediaSet,
    cancel_command,
    fan_out,
    fan_out_targets,
    play_command,
    stage_command,
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
from media.storage import media_path
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

    def _play(
        self, broadcast: Broadcast, content: Content, target: Target, inline: str | None
    ) -> Outgoing:
        # Media URLs are good until the broadcast expires, and only for this target.
        url_for = url_signer(self._settings.media_url, broadcast.expires_at)
        live_url_for = url_signer(self._settings.live_url, broadcast.expires_at)
        topic = (
            protocol.area_command_topic(target.area)
            if target.area
            else protocol.cluster_command_topic(target.cluster or "")
        )
        message = self._outgoing(
            topic,
            play_command(
                broadcast,
                content,
                target,
                url_for=url_for,
                live_url_for=live_url_for,
                inline=inline,
            ),
        )
        if inline is not None and len(message.payload) > protocol.MAX_PAYLOAD_BYTES:
            # Long URLs or many alternates: a device would refuse the whole command, so the
            # clip goes by download alone.
            return self._play(broadcast, content, target, None)
        return message

    async def inline_data(self, content: Content) -> str | None:
        """The default rendition as `media.data`, if it is small enough to ride in the
        command (INLINE_MEDIA_MAX_BYTES): one publication then reaches a province with the
        clip, and no cluster downloads it (docs/benchmarks.md)."""
        audio = content.audio
        limit = self._settings.inline_media_max_bytes
        if audio is None or not content.first_airing or audio.main.size > limit:
            return None
        path = media_path(self._settings.media_dir, audio.main.sha256)
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except OSError:
            return None  # the clusters download it (and are told why if it is gone)
        return protocol.inline_data(raw)

    async def publish_plays(self, plays: list[tuple[Broadcast, Content]]) -> bool:
        """Publish committed broadcasts at once; False if the broker did not take it all."""
        inline = [await self.inline_data(content) for _, content in plays]
        return await self._after_commit(
            [broadcast for broadcast, _ in plays],
            [
                self._play(broadcast, content, target, data)
                for (broadcast, content), data in zip(plays, inline, strict=True)
                for _, target in fan_out_targets(broadcast)
            ],
        )

    async def publish_stage(
        self,
        *,
        stage_id: str,
        cls: str,
        level: str,
        title: str,
        media: MediaSet,
        areas: list[str],
        clusters: list[str],
        expires_at: datetime,
    ) -> bool:
        """Publish a staging command to the targets; False if the broker did not take it
        (nothing is owed: the play downloads the clip as it would have)."""
        url_for = url_signer(self._settings.media_url, expires_at)
        now = self._clock.now()
        return await self.publish_commands(
            f"stage {stage_id}",
            [
                (
                    topic,
                    stage_command(
                        stage_id=stage_id,
                        cls=cls,
                        level=level,
                        title=title,
                        media=media,
                        target=target,
                        issued_at=now,
                        expires_at=expires_at,
                        url_for=url_for,
                    ),
                )
                for topic, target in fan_out(areas, clusters)
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
        contents: dict[str, tuple[Content, str | None]] = {}
        for delivery, code, broadcast in rows:
            target = Target(cluster=code)
            if delivery.state == DeliveryState.CANCELED:
                command = cancel_command(broadcast, target, now)
                outgoing.append(self._outgoing(protocol.cluster_command_topic(code), command))
            else:
                if broadcast.id not in contents:
                    # A re-send goes to a cluster that has not confirmed: it most likely
                    # lacks the clip, so a small one rides along even on a repeat airing.
                    content = await content_of(session, self._settings, broadcast)
                    contents[broadcast.id] = (content, await self.inline_data(content))
                content, inline = contents[broadcast.id]
                outgoing.append(self._play(broadcast, content, target, inline))
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
    session: AsyncSession,
    settings: Settings,
    *,
    media_sha256: str | None,
    image_sha256: str | None,
) -> Content:
    """The files a command names (a broadcast's, or a stored schedule item's), with the
    renditions other device models play."""
    audio = None
    if media_sha256:
        media = await session.get(MediaFile, media_sha256)
        if media is not None:
            audio = MediaSet(media, await media_service.alternates(session, settings, media))
    image = await session.get(MediaFile, image_sha256) if image_sha256 else None
    return Content(audio, image)


async def content_of(session: AsyncSession, settings: Settings, broadcast: Broadcast) -> Content:
    """A broadcast's files, led by the rendition it aired (every play and re-send of it
    names the same one)."""
    return await load_content(
        session,
        settings,
        media_sha256=broadcast.aired_sha256 or broadcast.media_sha256,
        image_sha256=broadcast.image_sha256,
    )
