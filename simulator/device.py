"""One simulated cluster: verifies commands, fetches media, plays, acknowledges each stage."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devices import media_auth, protocol
from devices.mqtt_lite import LiteClient, MqttLiteError
from devices.protocol import (
    Ack,
    AckStage,
    Command,
    CommandClass,
    CommandKind,
    Display,
    Heartbeat,
    MediaRef,
    ProtocolError,
    ScheduleItem,
    Status,
    StreamRef,
)
from simulator import http_lite
from simulator.stored_schedule import StoredSchedule

log = logging.getLogger(__name__)

RECONNECT_BASE_S = 0.5  # a cluster on 4G retries quickly, then backs off
RECONNECT_CAP_S = 10.0
KEEPALIVE_S = 30
SEEN_COMMANDS_MAX = 512  # ids remembered against replays; older ones have long expired
LOCAL_PREFIX = "local:"  # ids of plays from the stored schedule
STREAM_STALL_S = 5.0  # a relay silent this long is dead (Icecast sends continuously)
STREAM_CHUNK_BYTES = 16 * 1024


@dataclass(frozen=True)
class DeviceSpec:
    code: str
    kind: str  # speaker_cluster | eboard
    areas: tuple[str, ...]  # area codes from the root down
    firmware: str = "sim-1.0"
    profile: str | None = None  # delivery profile of its model (which rendition it plays)
    media_key: str = ""  # from provisioning: proves who it is to the media server


@dataclass
class Faults:
    """What can go wrong, per device, as probabilities and delays."""

    ack_loss: float = 0.0  # share of acknowledgements silently dropped
    latency_s: float = 0.0  # extra delay before each acknowledgement, uniform 0..latency
    media_corrupt: float = 0.0  # share of downloads whose bytes come back altered


@dataclass
class Environment:
    """What every device of one fleet shares: broker, media client, clock compression."""

    host: str
    port: int
    downloads: asyncio.Semaphore  # media downloads in flight at once from this process
    faults: Faults = field(default_factory=Faults)
    time_compression: float = 1.0  # 10 = a 60 s bulletin plays in 6 s
    heartbeat_s: float = 60.0
    local_addr: str | None = None
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class _Playback:
    command: Command
    task: asyncio.Task[None]


class SimulatedCluster:
    def __init__(self, spec: DeviceSpec, env: Environment) -> None:
        self.spec = spec
        self.env = env
        self.client = LiteClient(spec.code, self._on_message, keepalive=KEEPALIVE_S)
        self._areas = set(spec.areas)
        self._last_stage: dict[str, AckStage | None] = {}  # command id -> latest stage sent
        self._canceled: set[str] = set()  # broadcast ids
        self._current: _Playback | None = None
        self._waiting: dict[str, _Playback] = {}
        self._media_cache: dict[str, bytes] = {}
        self._run_task: asyncio.Task[None] | None = None
        self._hb_seq = 0
        self.online = asyncio.Event()
        self.play_counts: Counter[str] = Counter()  # broadcast id -> full plays
        self.acks_dropped = 0
        self.rejected: list[str] = []
        self.volume = 70
        self.shown: list[Display] = []  # e-boards: what has been on screen, in order
        self._offline_until = 0.0
        self.schedule = StoredSchedule(
            connected=lambda: self.client.connected,
            play_locally=self._play_item,
            prefetch=self._fetch,
        )
        self.local_plays: Counter[str] = Counter()  # schedule item id -> plays from storage
        self._reported_items: set[str] = set()
        self.stream_bytes: Counter[str] = Counter()  # broadcast id -> relayed bytes

    # --- connection ------------------------------------------------------------------

    def start(self) -> None:
        self._run_task = asyncio.create_task(self._run(), name=f"sim-{self.spec.code}")

    async def stop(self, *, clean: bool = True) -> None:
        if self._run_task is not None:
            self._run_task.cancel()
            try:
                await self._run_task
            except asyncio.CancelledError:
                pass
            self._run_task = None
        await self.schedule.close()
        if clean:
            await self.client.disconnect()
        else:
            self.client.drop()
        self.online.clear()

    def drop_link(self) -> None:
        """Lose the link abruptly (the broker publishes our Last Will); we reconnect."""
        self.client.drop()

    def go_offline(self, seconds: float) -> None:
        """Lose the link and stay off the network for a while (a 4G outage)."""
        self._offline_until = time.monotonic() + seconds
        self.client.drop()

    async def _run(self) -> None:
        delay = RECONNECT_BASE_S
        code = self.spec.code
        will = (protocol.status_topic(code), Status(cluster=code, online=False).to_json(), True)
        while True:
            if (outage := self._offline_until - time.monotonic()) > 0:
                await asyncio.sleep(outage)
            try:
                await self.client.connect(
                    self.env.host, self.env.port, will=will, local_addr=self.env.local_addr
                )
                filters = [protocol.cluster_command_topic(code), protocol.schedule_topic(code)]
                filters += [protocol.area_command_topic(a) for a in self.spec.areas]
                await self.client.subscribe(filters)
                online = Status(cluster=code, online=True, fw=self.spec.firmware)
                self.client.publish(protocol.status_topic(code), online.to_json(), retain=True)
                self._report_local_plays()
                self.online.set()
                delay = RECONNECT_BASE_S
                hb = asyncio.create_task(self._heartbeats())
                try:
                    await self.client.closed.wait()
                finally:
                    hb.cancel()
                self.online.clear()
            except (OSError, TimeoutError, MqttLiteError) as exc:
                log.debug("%s: connect failed: %s", code, exc)
                self.client.drop()
            await asyncio.sleep(delay * (0.5 + self.env.rng.random()))
            delay = min(delay * 2, RECONNECT_CAP_S)

    async def _heartbeats(self) -> None:
        # Spread the fleet's heartbeats over the interval instead of all at once.
        await asyncio.sleep(self.env.rng.random() * self.env.heartbeat_s)
        while self.client.connected:
            if not self._publish_heartbeat():
                return
            await asyncio.sleep(self.env.heartbeat_s)

    def _publish_heartbeat(self) -> bool:
        """False if the link is down."""
        self._hb_seq += 1
        playing = self._current.command.broadcast if self._current else None
        hb = Heartbeat(
            cluster=self.spec.code,
            at=datetime.now(UTC),
            seq=self._hb_seq,
            playing=playing,
            volume=self.volume,
            rssi=-70,
            supply_v=220.0,
            power="mains",
            fw=self.spec.firmware,
            schedule_version=self.schedule.version or None,
        )
        try:
            self.client.publish(protocol.heartbeat_topic(self.spec.code), hb.to_json(), qos=0)
        except MqttLiteError:
            return False
        return True

    # --- acknowledgements ---------------------------------------------------------------

    def _remember(self, command_id: str, stage: AckStage | None) -> None:
        self._last_stage[command_id] = stage
        if len(self._last_stage) > SEEN_COMMANDS_MAX:
            self._last_stage.pop(next(iter(self._last_stage)))

    def _ack(self, command: Command, stage: AckStage, reason: str | None = None) -> None:
        self._remember(command.id, stage)
        if not command.id.startswith(LOCAL_PREFIX):  # a stored item: no command to answer
            self._send_ack(command.id, command.broadcast, stage, reason)

    def _send_ack(self, cmd: str, broadcast: str, stage: AckStage, reason: str | None) -> None:
        faults = self.env.faults
        if faults.ack_loss and self.env.rng.random() < faults.ack_loss:
            self.acks_dropped += 1
            return
        ack = Ack(
            cmd=cmd,
            broadcast=broadcast,
            cluster=self.spec.code,
            stage=stage,
            at=datetime.now(UTC),
            reason=reason,
        ).to_json()
        topic = protocol.ack_topic(self.spec.code)

        def publish() -> None:
            try:
                self.client.publish(topic, ack)
            except MqttLiteError:
                pass  # link down: the control plane will ask again

        if faults.latency_s:
            asyncio.get_running_loop().call_later(self.env.rng.random() * faults.latency_s, publish)
        else:
            publish()

    # --- commands -----------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/schedule"):
            self._on_schedule(payload)
            return
        try:
            command = protocol.parse_command(payload)
        except ProtocolError as exc:
            self.rejected.append(f"malformed: {exc}")
            return  # nothing to answer: we cannot tell which command it was
        now = datetime.now(UTC)
        if command.id in self._last_stage:
            # A repeat (re-send or replay): never act twice, just say where we are. A command
            # still being fetched has no stage yet, and its first answer is on its way.
            stage = self._last_stage[command.id]
            if stage is not None:
                self._send_ack(command.id, command.broadcast, stage, None)
            return
        self._remember(command.id, None)
        if command.is_expired(now):
            self.rejected.append(f"expired: {command.id}")
            self._ack(command, AckStage.REJECTED, "expired")
            return
        target = command.target
        if not (target.cluster == self.spec.code or (target.area and target.area in self._areas)):
            self.rejected.append(f"misaddressed: {command.id}")
            self._ack(command, AckStage.REJECTED, "misaddressed")
            return
        if command.kind is CommandKind.PROBE:
            self._ack(command, AckStage.RECEIVED)
        elif command.kind is CommandKind.CANCEL:
            self._cancel(command)
        else:
            if command.broadcast in self._canceled:
                self._ack(command, AckStage.REJECTED, "canceled")
                return
            if command.item is not None:
                self.schedule.commanded(command.item)
                if command.item in self.schedule.played:
                    # Played from the stored schedule while the link was down: say so.
                    self._ack(command, AckStage.PLAYED)
                    return
                self.schedule.started(command.item)
            task = asyncio.create_task(self._play(command))
            self._waiting[command.broadcast] = _Playback(command, task)

    def _on_schedule(self, payload: bytes) -> None:
        try:
            doc = protocol.parse_schedule(payload)
        except ProtocolError as exc:
            self.rejected.append(f"malformed schedule: {exc}")
            return
        if doc.cluster != self.spec.code:
            self.rejected.append(f"misaddressed schedule: {doc.cluster}")
            return
        if self.schedule.accept(doc, self.spec.profile):
            self._publish_heartbeat()  # confirms the version at once

    def _report_local_plays(self) -> None:
        """What was played from storage while the link was down (protocol section 11)."""
        for item_id in [i for i in self.local_plays if i not in self._reported_items]:
            report = Ack(
                cmd="",
                broadcast="",
                cluster=self.spec.code,
                stage=AckStage.PLAYED,
                at=self.schedule.played[item_id],
                item=item_id,
            )
            try:
                self.client.publish(protocol.ack_topic(self.spec.code), report.to_json())
            except MqttLiteError:
                return  # reported at the next connect
            self._reported_items.add(item_id)

    async def _play_item(self, item: ScheduleItem) -> None:
        """Play a stored item with no command behind it: nothing to acknowledge now (the
        control plane asks when the link is back, and hears "played")."""
        command = Command.model_validate(
            {
                "id": f"{LOCAL_PREFIX}{item.id}",
                "kind": CommandKind.PLAY,
                "broadcast": f"{LOCAL_PREFIX}{item.id}",
                "class": item.cls,
                "level": item.level,
                "issued_at": item.starts_at,
                "expires_at": item.expires_at,
                "target": {"cluster": self.spec.code},
                "title": item.title,
                "media": item.media,
                "stream": item.stream,
                "display": item.display,
                "item": item.id,
            }
        )
        task = asyncio.create_task(self._play(command))
        self._waiting[command.broadcast] = _Playback(command, task)
        await asyncio.wait({task})
        if self.play_counts[command.broadcast]:
            self.local_plays[item.id] += 1
            if self.client.connected:  # online but the control plane was silent
                self._report_local_plays()

    def _cancel(self, command: Command) -> None:
        self._canceled.add(command.broadcast)
        for playback in (self._current, self._waiting.get(command.broadcast)):
            if playback is not None and playback.command.broadcast == command.broadcast:
                playback.task.cancel()
        self._ack(command, AckStage.CANCELED)

    async def _fetch_media(self, command: Command) -> str | None:
        """Download and verify what this device needs; the reason on failure. Speakers
        fetch the audio (streams are opened when playing); e-boards fetch the image."""
        if self.spec.kind == "eboard":
            image = command.display.image if command.display else None
            return await self._fetch(image) if image else None
        if command.media is None:
            return None
        return await self._fetch(command.media.for_profile(self.spec.profile))

    async def _fetch(self, media: MediaRef) -> str | None:
        if media.sha256 in self._media_cache:
            return None
        spec = self.spec
        url = media_auth.device_url(media.url, code=spec.code, areas=spec.areas, key=spec.media_key)
        try:
            async with self.env.downloads:
                status, body = await http_lite.get(url)
        except (OSError, TimeoutError, http_lite.HttpLiteError) as exc:
            return f"media download failed: {exc.__class__.__name__}"
        if status != 200:
            return f"media download failed: HTTP {status}"
        if self.env.faults.media_corrupt and self.env.rng.random() < self.env.faults.media_corrupt:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        if hashlib.sha256(body).hexdigest() != media.sha256:
            return "media sha256 mismatch"
        self._media_cache[media.sha256] = body
        return None

    async def _play(self, command: Command) -> None:
        playback = self._waiting[command.broadcast]
        try:
            failure = await self._fetch_media(command)
            if failure is not None:
                self._ack(command, AckStage.FAILED, failure)
                return
            self._ack(command, AckStage.RECEIVED)
            if command.stream is not None:  # e-boards show the relay's banner while it runs
                await _sleep_until(command.stream.starts_at)
            await self._take_the_speaker(playback)
            if self.spec.kind == "eboard":
                await self._show(command)
            elif command.stream is not None:
                failure = await self._relay(command, command.stream)
                if failure is not None:
                    self._ack(command, AckStage.FAILED, failure)
                    return
            else:
                self._ack(command, AckStage.PLAYING)
                duration_s = (command.media.duration_ms / 1000) if command.media else 1.0
                for _ in range(command.repeat):
                    await asyncio.sleep(duration_s / self.env.time_compression)
            self.play_counts[command.broadcast] += 1
            self._ack(command, AckStage.PLAYED)
        except asyncio.CancelledError:
            if command.broadcast not in self._canceled:
                self._ack(command, AckStage.PREEMPTED, "preempted by a higher-priority broadcast")
            raise
        finally:
            self._waiting.pop(command.broadcast, None)
            if self._current is playback:
                self._current = None

    async def _show(self, command: Command) -> None:
        """An e-board: the bulletin on screen for its display time."""
        display = command.display
        if display is not None:
            self.shown.append(display)
        self._ack(command, AckStage.PLAYING)
        duration_s = display.duration_s if display else 60
        await asyncio.sleep(duration_s / self.env.time_compression)

    async def _relay(self, command: Command, stream: StreamRef) -> str | None:
        """Relay a live stream until its end (or the command's expiry): "playing" only once
        audio bytes arrive; the reason if it is unreachable or dies early."""
        ends_at = stream.ends_at or command.expires_at
        try:
            status, reader, writer = await http_lite.open_stream(stream.url)
        except (OSError, TimeoutError, http_lite.HttpLiteError) as exc:
            return f"stream unreachable: {exc.__class__.__name__}"
        try:
            if status != 200:
                return f"stream unreachable: HTTP {status}"
            playing = False
            while (left := (ends_at - datetime.now(UTC)).total_seconds()) > 0:
                try:
                    async with asyncio.timeout(min(left, STREAM_STALL_S)):
                        chunk = await reader.read(STREAM_CHUNK_BYTES)
                except TimeoutError:
                    if (ends_at - datetime.now(UTC)).total_seconds() <= 0:
                        break
                    return f"stream stalled: no audio for {STREAM_STALL_S:.0f} s"
                if not chunk:
                    return "stream ended before its end time"
                self.stream_bytes[command.broadcast] += len(chunk)
                if not playing:
                    playing = True
                    self._ack(command, AckStage.PLAYING)
            return None
        finally:
            writer.close()

    async def _take_the_speaker(self, playback: _Playback) -> None:
        """An emergency pre-empts whatever plays (docs/protocol.md 4.3); anything else,
        priority included, waits for the speaker: priority orders the queue, it does not
        cut in."""
        while self._current is not None and self._current is not playback:
            current = self._current
            if playback.command.cls is CommandClass.EMERGENCY:
                current.task.cancel()
                self._current = None
                break
            await asyncio.wait({current.task})
        self._current = playback


async def _sleep_until(when: datetime | None) -> None:
    if when is not None and (wait := (when - datetime.now(UTC)).total_seconds()) > 0:
        await asyncio.sleep(wait)
