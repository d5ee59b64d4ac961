"""One simulated cluster: verifies commands, fetches media, plays, acknowledges each stage."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import ssl
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from simulator import http_lite
from simulator.stored_schedule import StoredSchedule
from wire import media_auth, protocol
from wire.mqtt_lite import LiteClient, MqttLiteError
from wire.protocol import (
    CLASS_RANK,
    LEVEL_RANK,
    Ack,
    AckStage,
    Command,
    CommandClass,
    CommandKind,
    Display,
    FirmwareManifest,
    Heartbeat,
    MediaRef,
    OperationParams,
    ProtocolError,
    ScheduleItem,
    Status,
    StreamRef,
)
from wire.signing import SignatureError, TrustStore

log = logging.getLogger(__name__)

RECONNECT_BASE_S = 0.5  # a cluster on 4G retries quickly, then backs off
RECONNECT_CAP_S = 10.0
VERIFIED_MAX = 256  # commands a process remembers as parsed and verified
KEEPALIVE_S = 30
SEEN_COMMANDS_MAX = 512  # ids remembered against replays; older ones have long expired
STREAM_STALL_S = 5.0  # a relay silent this long is dead (Icecast sends continuously)
STREAM_CHUNK_BYTES = 16 * 1024
PREEMPTED_REASON = "preempted by a higher-priority broadcast"
OFFLINE_ACK_TIMEOUT_S = 2.0  # a clean shutdown waits this long for its last word
MAX_EARLY_S = 60.0  # a play sent further ahead of its starts_at than this: clocks disagree
# A download that fails for a passing reason (no connection, a timeout, HTTP 5xx or 429)
# is tried again, backing off, until the command's validity ends (docs/protocol.md 4.1).
DOWNLOAD_RETRY_BASE_S = 0.5
DOWNLOAD_RETRY_CAP_S = 15.0
SHA256_MISMATCH = "media sha256 mismatch"
NOTHING_TO_PLAY = "nothing to play"  # a display-only play reaching a speaker (protocol 4.5)


@dataclass(frozen=True)
class DeviceSpec:
    code: str
    kind: str  # speaker_cluster | eboard
    areas: tuple[str, ...]  # area codes from the root down
    firmware: str = "sim-1.0"
    profile: str | None = None  # delivery profile of its model (which rendition it plays)
    media_key: str = ""  # from provisioning: proves who it is to the media server
    trusted_keys: tuple[str, ...] = ()  # from provisioning: whose signatures it accepts
    firmware_keys: tuple[str, ...] = ()  # from provisioning: whose firmware images it installs
    model: str | None = None  # hardware model: a firmware image for another is refused


@dataclass
class Faults:
    """What can go wrong, per device, as probabilities and delays."""

    ack_loss: float = 0.0  # share of acknowledgements silently dropped
    latency_s: float = 0.0  # extra delay before each acknowledgement, uniform 0..latency
    # (so with a latency, a device's acknowledgements also arrive out of order)
    duplicate_acks: float = 0.0  # share of acknowledgements sent twice (QoS 1 redelivery)
    media_corrupt: float = 0.0  # share of downloads whose bytes come back altered
    firmware_failure: float = 0.0  # share of firmware installs that do not boot
    ignore_schedules: bool = False  # takes no pushed schedule (a device without section 11)


@dataclass
class Condition:
    """What a cluster's sensors read (docs/protocol.md section 3); faults change it."""

    power: Literal["mains", "battery"] = "mains"
    supply_v: float = 221.0
    amp_on: bool = True
    amp_temp_c: float = 41.0
    speakers: int = 2
    speaker_faults: tuple[int, ...] = ()
    relay_trip: Literal["overvoltage", "undervoltage", "phase_loss"] | None = None
    rssi: int = -71
    clock_skew_s: float = 0.0
    hung: bool = False  # connected but silent: no heartbeats at all
    amp_dead: bool = False  # the amplifier does not answer its controller
    install_fails: bool = False  # a new firmware image will not boot on it (rolled back)

    def lose_mains(self) -> None:
        self.power, self.supply_v = "battery", 12.4


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
    tls: ssl.SSLContext | None = None  # broker and media over TLS, trusting this CA
    # A real fleet parses and verifies each command on every cluster's own CPU at once;
    # simulated clusters share this machine's cores, where 10,000 signature checks of one
    # area command cost about a second, and parsing it was 44 % of a simulator's time
    # (docs/benchmarks.md). So a process does each once per payload and its clusters share
    # the result: the parsed command is frozen, and the object it came from is only read.
    verified: OrderedDict[tuple[bytes, frozenset[str]], None] = field(default_factory=OrderedDict)
    parsed: OrderedDict[bytes, tuple[Command, dict[str, Any]]] = field(default_factory=OrderedDict)

    def check_signature(self, trust: TrustStore, payload: bytes, obj: dict[str, Any]) -> None:
        """`trust.check(obj)` (obj parsed from payload), once per payload and keys."""
        key = (payload, trust.kids)
        if key in self.verified:
            return
        trust.check(obj)  # a failure is not remembered: every cluster refuses it itself
        _keep_recent(self.verified, key, None)

    def parse_command(self, payload: bytes) -> tuple[Command, dict[str, Any]]:
        """`protocol.parse_signed(Command, payload)`, once per payload (a malformed one is
        refused by every cluster itself)."""
        found = self.parsed.get(payload)
        if found is None:
            found = protocol.parse_signed(Command, payload)
            _keep_recent(self.parsed, payload, found)
        return found


def _keep_recent[K, V](memo: OrderedDict[K, V], key: K, value: V) -> None:
    memo[key] = value
    if len(memo) > VERIFIED_MAX:
        memo.popitem(last=False)


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
        self.trust = TrustStore(spec.trusted_keys)
        self.keyset_version = 0
        self._last_stage: dict[str, AckStage | None] = {}  # command id -> latest stage sent
        self._expires: dict[str, datetime] = {}  # command id -> its expires_at
        self._canceled: set[str] = set()  # broadcast ids
        # Broadcast ids of every verified play command, and of every verified cancel: what
        # reached this cluster (tests assert that a refused request reached nobody).
        self.commanded: set[str] = set()
        self.cancels: set[str] = set()
        self._current: _Playback | None = None
        self._queue: list[_Playback] = []  # waiting for the speaker
        self._speaker_free = asyncio.Event()
        self.started: list[str] = []  # broadcast ids, in the order they took the speaker
        self._waiting: dict[str, _Playback] = {}
        self._media_cache: dict[str, bytes] = {}
        self._run_task: asyncio.Task[None] | None = None
        self._hb_seq = 0
        self.online = asyncio.Event()
        self.play_counts: Counter[str] = Counter()  # broadcast id -> full plays
        self.acks_dropped = 0
        self.acks_sent = 0  # handed to the broker (a replica's ingest counts what it read)
        self.download_retries = 0
        self.rejected: list[str] = []
        self.volume = 70
        self.condition = Condition()  # what its sensors read; tests and faults change it
        self.fm_khz: int | None = None
        self.firmware = spec.firmware
        self.installs: list[str] = []  # firmware versions installed, in order
        self._operations: set[asyncio.Task[None]] = set()
        self.test_tones = 0
        self.reboots = 0
        self._booted = time.monotonic()
        self.shown: list[Display] = []  # e-boards: what has been on screen, in order
        self._offline_until = 0.0
        self.schedule = StoredSchedule(
            connected=lambda: self.client.connected,
            play_locally=self._play_item,
            prefetch=self._fetch,
        )
        self.local_plays: Counter[str] = Counter()  # schedule item id -> plays from storage
        self._reported_items: set[str] = set()
        self.local_cut: set[str] = set()  # stored items an emergency cut off
        self._item_commands: dict[str, Command] = {}  # stored item -> command that asked
        self.stream_bytes: Counter[str] = Counter()  # broadcast id -> relayed bytes

    # --- connection ------------------------------------------------------------------

    def clock(self) -> datetime:
        """The cluster's own clock: what it stamps on its messages and checks validity by
        (its skew is a fault a test can set)."""
        return datetime.now(UTC) + timedelta(seconds=self.condition.clock_skew_s)

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
        for task in list(self._operations):
            task.cancel()
        if clean:
            await self._say_offline()
            await self.client.disconnect()
        else:
            self.client.drop()
        self.online.clear()

    async def _say_offline(self) -> None:
        """A clean DISCONNECT suppresses the Last Will, so a device shutting down says it
        is offline itself (retained); otherwise its birth message would stay retained and
        tell whoever subscribes next that it is online."""
        code = self.spec.code
        offline = Status(cluster=code, online=False).to_json()
        try:
            acked = self.client.publish(protocol.status_topic(code), offline, retain=True)
        except MqttLiteError:
            return  # not connected: the broker already published the Will
        if acked is not None:
            with contextlib.suppress(TimeoutError, MqttLiteError):
                await asyncio.wait_for(acked, OFFLINE_ACK_TIMEOUT_S)

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
        # Powered up: a clean start (we remember nothing, the control plane re-sends what
        # is unconfirmed); from then on each reconnection resumes the session, and what
        # was published while the link was down arrives at once (docs/protocol.md 1).
        resume = False
        will = (protocol.status_topic(code), Status(cluster=code, online=False).to_json(), True)
        while True:
            if (outage := self._offline_until - time.monotonic()) > 0:
                await asyncio.sleep(outage)
            try:
                await self.client.connect(
                    self.env.host,
                    self.env.port,
                    will=will,
                    clean_start=not resume,
                    session_expiry_s=protocol.DEVICE_SESSION_EXPIRY_S,
                    local_addr=self.env.local_addr,
                    tls=self.env.tls,
                )
                resume = True
                filters = [
                    protocol.KEYS_TOPIC,
                    protocol.cluster_command_topic(code),
                    protocol.schedule_topic(code),
                ]
                filters += [protocol.area_command_topic(a) for a in self.spec.areas]
                await self.client.subscribe(filters)
                online = Status(cluster=code, online=True, fw=self.firmware)
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

    def heartbeat_now(self) -> bool:
        """Report at once (as after a change a real device notices); False if offline."""
        return self._publish_heartbeat()

    def _publish_heartbeat(self) -> bool:
        """False if the link is down."""
        if self.condition.hung:
            return True  # connected, but says nothing: only missed heartbeats tell
        self._hb_seq += 1
        playing = self._current.command.broadcast if self._current else None
        state = self.condition
        hb = Heartbeat(
            cluster=self.spec.code,
            at=self.clock(),
            seq=self._hb_seq,
            playing=playing,
            volume=self.volume,
            rssi=state.rssi,
            supply_v=state.supply_v,
            power=state.power,
            amp_on=state.amp_on,
            amp_temp_c=state.amp_temp_c,
            speakers=state.speakers,
            speaker_faults=state.speaker_faults,
            relay_trip=state.relay_trip,
            uptime_s=int(time.monotonic() - self._booted),
            fw=self.firmware,
            schedule_version=self.schedule.version or None,
        )
        try:
            self.client.publish(protocol.heartbeat_topic(self.spec.code), hb.to_json(), qos=0)
        except MqttLiteError:
            return False
        return True

    # --- acknowledgements ---------------------------------------------------------------

    def _remember(
        self, command_id: str, stage: AckStage | None, expires_at: datetime | None = None
    ) -> None:
        self._last_stage[command_id] = stage
        if expires_at is not None:
            self._expires[command_id] = expires_at
        if len(self._last_stage) > SEEN_COMMANDS_MAX:
            oldest = next(iter(self._last_stage))
            self._last_stage.pop(oldest)
            self._expires.pop(oldest, None)

    async def power_cycle(self) -> None:
        """The power goes off and comes back: what plays stops, the link drops without a
        word (the broker publishes the Will), and the device boots with only what it keeps
        in non-volatile memory (docs/protocol.md 4.8): the ids of unexpired commands it
        heard (a replay within their validity must not sound twice), the broadcasts it was
        told to cancel, its held schedule and the plays from it not yet reported. A
        command only fetched is forgotten, so the control plane's re-send still plays it;
        one that was sounding is kept as interrupted (dropped, section 4.3)."""
        for playback in list(self._waiting.values()):
            playback.task.cancel()
        await self.stop(clean=False)
        now = self.clock()
        kept: dict[str, AckStage | None] = {}
        for command_id, stage in self._last_stage.items():
            if self._expires.get(command_id, now) <= now or stage in (None, AckStage.RECEIVED):
                continue
            kept[command_id] = AckStage.PREEMPTED if stage is AckStage.PLAYING else stage
        self._last_stage = kept
        self._expires = {c: e for c, e in self._expires.items() if c in kept}
        self._current, self._queue, self._waiting = None, [], {}
        self._speaker_free = asyncio.Event()
        self._hb_seq, self._booted = 0, time.monotonic()
        self.reboots += 1
        self.start()

    def _ack(self, command: Command, stage: AckStage, reason: str | None = None) -> None:
        self._remember(command.id, stage)
        if not command.id.startswith(
            protocol.LOCAL_PLAY_PREFIX
        ):  # a stored item: no command to answer
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
            at=self.clock(),
            reason=reason,
        ).to_json()
        topic = protocol.ack_topic(self.spec.code)

        def publish() -> None:
            try:
                self.client.publish(topic, ack)
                self.acks_sent += 1
            except MqttLiteError:
                pass  # link down: the control plane will ask again

        copies = 2 if faults.duplicate_acks and self.env.rng.random() < faults.duplicate_acks else 1
        for _ in range(copies):
            if faults.latency_s:
                delay = self.env.rng.random() * faults.latency_s
                asyncio.get_running_loop().call_later(delay, publish)
            else:
                publish()

    # --- commands -----------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == protocol.KEYS_TOPIC:
            self._on_keyset(payload)
            return
        if topic.endswith("/schedule"):
            self._on_schedule(payload)
            return
        try:
            command, raw = self.env.parse_command(payload)
        except ProtocolError as exc:
            self.rejected.append(f"malformed: {exc}")
            return  # nothing to answer: we cannot tell which command it was
        now = self.clock()
        if command.id in self._last_stage:
            # A repeat (re-send or replay): never act twice, just say where we are. A command
            # still being fetched has no stage yet, and its first answer is on its way.
            stage = self._last_stage[command.id]
            if stage is not None:
                self._send_ack(command.id, command.broadcast, stage, None)
            return
        try:
            self.env.check_signature(self.trust, payload, raw)
        except SignatureError as exc:
            # Not remembered: a forgery must not use up the id of a genuine command.
            self.rejected.append(f"{exc.problem.value}: {command.id}")
            self._send_ack(command.id, command.broadcast, AckStage.REJECTED, exc.problem.value)
            return
        self._remember(command.id, None, command.expires_at)
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
        elif command.kind in protocol.OPERATION_KINDS:
            self._ack(command, AckStage.RECEIVED)
            task = asyncio.create_task(self._operate(command, raw))
            self._operations.add(task)  # kept referenced until done
            task.add_done_callback(self._operations.discard)
        else:
            self.commanded.add(command.broadcast)
            if command.broadcast in self._canceled:
                self._ack(command, AckStage.REJECTED, "canceled")
                return
            if command.item is not None:
                self.schedule.commanded(command.item)
                if command.item in self.schedule.played:
                    # Started from the stored schedule while the link was down: say how it
                    # went, without sound (and again when a play still under way ends).
                    self._item_commands[command.item] = command
                    self._ack(command, *self._stored_outcome(command.item))
                    return
                self.schedule.started(command.item)
            task = asyncio.create_task(self._play(command))
            self._waiting[command.broadcast] = _Playback(command, task)

    def _on_keyset(self, payload: bytes) -> None:
        """A new set of trusted keys, signed by one we trust already (key rotation)."""
        try:
            keyset, raw = protocol.parse_signed(protocol.KeySet, payload)
            self.trust.check(raw)
            if keyset.version <= self.keyset_version:
                # An old set replayed could bring back a retired key.
                if keyset.version < self.keyset_version:
                    self.rejected.append(f"keyset: old version {keyset.version}")
                return
            self.trust.replace(keyset.keys)
        except (ProtocolError, SignatureError, ValueError) as exc:
            self.rejected.append(f"keyset: {exc}")
            return
        self.keyset_version = keyset.version

    def _on_schedule(self, payload: bytes) -> None:
        if self.env.faults.ignore_schedules:
            return
        try:
            doc, raw = protocol.parse_signed(protocol.ScheduleDoc, payload)
            self.trust.check(raw)
        except (ProtocolError, SignatureError) as exc:
            self.rejected.append(f"schedule: {exc}")
            return
        if doc.cluster != self.spec.code:
            self.rejected.append(f"misaddressed schedule: {doc.cluster}")
            return
        if doc.valid_until <= datetime.now(UTC):
            self.rejected.append(f"expired schedule: {doc.version}")
            return
        if doc.version < self.schedule.version:
            self.rejected.append(f"schedule: old version {doc.version}")
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
                "id": f"{protocol.LOCAL_PLAY_PREFIX}{item.id}",
                "kind": CommandKind.PLAY,
                "broadcast": f"{protocol.LOCAL_PLAY_PREFIX}{item.id}",
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
        played = bool(self.play_counts[command.broadcast])
        if played:
            self.local_plays[item.id] += 1
        else:
            self.local_cut.add(item.id)  # pre-empted: dropped, not resumed (protocol 4.3)
        if (answered := self._item_commands.get(item.id)) is not None:
            self._ack(answered, *self._stored_outcome(item.id))
        if played and self.client.connected:  # online but the control plane was silent
            self._report_local_plays()

    def _stored_outcome(self, item_id: str) -> tuple[AckStage, str | None]:
        """Where a play from the stored schedule stands, as an acknowledgement."""
        if self.local_plays[item_id]:
            return AckStage.PLAYED, None
        if item_id in self.local_cut:
            return AckStage.PREEMPTED, PREEMPTED_REASON
        return AckStage.PLAYING, None

    async def _operate(self, command: Command, raw: dict[str, Any]) -> None:
        """A technician's remote command (docs/protocol.md 4.6): carry it out, report the
        new state in a heartbeat, answer `done`, or `failed` with the reason."""
        op, kind, state = command.op or OperationParams(), command.kind, self.condition
        failure: str | None = None
        if kind is CommandKind.SET_VOLUME and op.volume is not None:
            self.volume = op.volume
        elif kind is CommandKind.AMPLIFIER and op.on is not None:
            if state.amp_dead:
                failure = "amplifier does not answer"
            else:
                state.amp_on = op.on
        elif kind is CommandKind.TUNE_FM and op.frequency_khz is not None:
            self.fm_khz = op.frequency_khz
        elif kind is CommandKind.TEST_TONE:
            if state.amp_dead or not state.amp_on:
                failure = "amplifier off or not answering"
            else:
                await asyncio.sleep((op.seconds or 3) / self.env.time_compression)
                self.test_tones += 1
        elif kind is CommandKind.REBOOT:
            self._booted = time.monotonic()
            self.reboots += 1
            self.drop_link()  # back within a reconnect, then it answers
            self.online.clear()
            await self.online.wait()
        elif kind is CommandKind.SELF_TEST:
            failure = await self._self_check(command)
        elif kind is CommandKind.FIRMWARE_UPDATE and op.firmware is not None and op.url:
            failure = await self._install(op.firmware, op.url, raw)
        elif kind is CommandKind.SET_AREAS and op.areas and op.media_key:
            failure = await self._move(tuple(op.areas), op.media_key)
        elif kind is not CommandKind.REPORT_STATUS:
            failure = f"{kind.value}: parameters missing"
        if failure is None:
            self._publish_heartbeat()
            self._ack(command, AckStage.DONE)
        else:
            self._ack(command, AckStage.FAILED, failure)

    async def _move(self, areas: tuple[str, ...], media_key: str) -> str | None:
        """New areas (a reorganisation, docs/protocol.md 4.6): subscribe to their topics
        first and leave the old ones only then, so no moment is without either; keep them
        (and the key that goes with them) across a reboot."""
        old = self.spec.areas
        joining = [protocol.area_command_topic(a) for a in areas if a not in old]
        leaving = [protocol.area_command_topic(a) for a in old if a not in areas]
        try:
            refused = await self.client.subscribe(joining) if joining else []
            if refused:
                return f"subscription refused: {', '.join(refused)}"
            self._areas = set(old) | set(areas)  # both, until the old are left
            self.spec = replace(self.spec, areas=areas, media_key=media_key)
            if leaving:
                await self.client.unsubscribe(leaving)
        except (MqttLiteError, TimeoutError) as exc:
            return f"subscriptions not changed: {exc}"
        self._areas = set(areas)
        return None

    async def _install(self, image: FirmwareManifest, url: str, raw: dict[str, Any]) -> str | None:
        """What a device must do before it installs (docs/protocol.md 4.7): the manifest
        signed by a key it trusts, for its model, then the bytes fetched and matched
        against it. Then install, reboot, and come back on the new version; an image that
        does not boot is rolled back and reported."""
        manifest = (raw.get("op") or {}).get("firmware")  # as received, as signed
        try:
            # Firmware keys only: the key that signs commands never vouches for an image.
            TrustStore(self.spec.firmware_keys).check(
                manifest if isinstance(manifest, dict) else {}
            )
        except SignatureError as exc:
            return f"firmware signature refused: {exc.problem.value}"
        if image.model and self.spec.model and image.model != self.spec.model:
            return f"firmware is for {image.model}, this is {self.spec.model}"
        if image.version == self.firmware:
            return None  # already installed (a re-sent command after the reboot)
        ref = MediaRef(url=url, sha256=image.sha256, size=image.size, duration_ms=0, format="bin")
        failure = await self._fetch(ref, fresh=True)
        if failure is not None:
            return failure.replace("media", "firmware", 1)
        self._media_cache.pop(image.sha256, None)  # written to flash, not kept in memory
        faults = self.env.faults
        if self.condition.install_fails or (
            faults.firmware_failure and self.env.rng.random() < faults.firmware_failure
        ):
            return f"firmware {image.version} did not boot; rolled back to {self.firmware}"
        self.firmware = image.version
        self.installs.append(image.version)
        self._booted = time.monotonic()
        self.reboots += 1
        self.drop_link()
        self.online.clear()
        await self.online.wait()
        return None

    async def _self_check(self, command: Command) -> str | None:
        """Everything an emergency needs, without a sound: the command verified (it got
        here), the clip fetched afresh and checked, the amplifier answering, its lines
        and relay sound. The first thing wrong, or None."""
        state = self.condition
        if command.media is not None and self.spec.kind != "eboard":
            failure = await self._fetch(command.media.for_profile(self.spec.profile), fresh=True)
            if failure is not None:
                return failure
        if self.spec.kind == "eboard":
            return None  # a screen: verified and reachable is what it can show
        if state.amp_dead:
            return "amplifier does not answer"
        if not state.amp_on:
            return "amplifier switched off"
        if state.relay_trip:
            return f"protection relay tripped ({state.relay_trip})"
        if state.speaker_faults:
            return f"speaker line(s) {', '.join(map(str, state.speaker_faults))} open or shorted"
        return None

    def _cancel(self, command: Command) -> None:
        self._canceled.add(command.broadcast)
        self.cancels.add(command.broadcast)
        for playback in (self._current, self._waiting.get(command.broadcast)):
            if playback is not None and playback.command.broadcast == command.broadcast:
                playback.task.cancel()
        self._ack(command, AckStage.CANCELED)

    async def _fetch_media(self, command: Command) -> str | None:
        """Download and verify what this device needs; the reason on failure. Speakers
        fetch the audio (streams are opened when playing); e-boards fetch the image."""
        if self.spec.kind == "eboard":
            image = command.display.image if command.display else None
            return await self._fetch(image, until=command.expires_at) if image else None
        if command.media is None:
            # A display-only play is for screens (protocol 4.5); a speaker has nothing to say.
            return None if command.stream is not None else NOTHING_TO_PLAY
        media = command.media.for_profile(self.spec.profile)
        return await self._fetch(media, until=command.expires_at)

    async def _fetch(
        self, media: MediaRef, *, fresh: bool = False, until: datetime | None = None
    ) -> str | None:
        """Download and verify; the reason on failure. `fresh`: even if held (a test of
        the download path itself). `until`: passing failures are retried until then (a
        corrupted copy once); without it, one attempt (the self-test reports the first)."""
        if media.sha256 in self._media_cache and not fresh:
            return None
        delay, mismatches = DOWNLOAD_RETRY_BASE_S, 0
        while True:
            failure, passing = await self._download(media)
            if failure is None:
                return None
            if failure == SHA256_MISMATCH:
                mismatches += 1
                passing = mismatches < 2  # damaged on the way once; twice is the file
            if not passing or until is None or self.clock() + timedelta(seconds=delay) >= until:
                return failure
            self.download_retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, DOWNLOAD_RETRY_CAP_S)

    async def _download(self, media: MediaRef) -> tuple[str | None, bool]:
        """One attempt: (the reason it failed or None, whether trying again may help)."""
        spec = self.spec
        url = media_auth.device_url(media.url, code=spec.code, areas=spec.areas, key=spec.media_key)
        try:
            async with self.env.downloads:
                status, body = await http_lite.get(url, tls=self.env.tls)
        except (OSError, TimeoutError, http_lite.HttpLiteError) as exc:
            return f"media download failed: {exc.__class__.__name__}", True
        if status != 200:
            return f"media download failed: HTTP {status}", status >= 500 or status == 429
        if self.env.faults.media_corrupt and self.env.rng.random() < self.env.faults.media_corrupt:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        if hashlib.sha256(body).hexdigest() != media.sha256:
            return SHA256_MISMATCH, True
        self._media_cache[media.sha256] = body
        return None, False

    async def _play(self, command: Command) -> None:
        playback = self._waiting[command.broadcast]
        try:
            failure = await self._fetch_media(command)
            if failure is not None:
                self._ack(command, AckStage.FAILED, failure)
                return
            self._ack(command, AckStage.RECEIVED)
            await _sleep_until(_not_before(command.starts_at))  # a scheduled play, sent early
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
                failure = self._amplifier_for(command)
                if failure is not None:
                    self._ack(command, AckStage.FAILED, failure)
                    return
                self._ack(command, AckStage.PLAYING)
                duration_s = (command.media.duration_ms / 1000) if command.media else 1.0
                for _ in range(command.repeat):
                    await asyncio.sleep(duration_s / self.env.time_compression)
            self.play_counts[command.broadcast] += 1
            self._ack(command, AckStage.PLAYED)
        except asyncio.CancelledError:
            if command.broadcast not in self._canceled:
                self._ack(command, AckStage.PREEMPTED, PREEMPTED_REASON)
            raise
        finally:
            self._waiting.pop(command.broadcast, None)
            self._release_the_speaker(playback)

    def _amplifier_for(self, command: Command) -> str | None:
        """Sound needs the amplifier (docs/protocol.md 4.3): an emergency switches it on
        (a technician's "off" does not silence a flood warning) and says so at once; for
        anything else an amplifier switched off is a failure with its reason, never a
        silent `played`."""
        state = self.condition
        if state.amp_dead:
            return "amplifier does not answer"
        if state.amp_on:
            return None
        if command.cls is not CommandClass.EMERGENCY:
            return "amplifier off"
        state.amp_on = True
        self._publish_heartbeat()
        return None

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
        priority included, waits for the speaker, and what waits plays by class, then
        sender level, then time: priority orders the queue, it does not cut in."""
        current = self._current
        if playback.command.cls is CommandClass.EMERGENCY and current not in (None, playback):
            assert current is not None
            current.task.cancel()
            self._current = None
        self._queue.append(playback)
        try:
            while self._current is not None or min(self._queue, key=_rank) is not playback:
                self._speaker_free.clear()
                await self._speaker_free.wait()
        finally:
            self._queue.remove(playback)
            self._speaker_free.set()  # whoever is next in line looks again
        self._current = playback
        self.started.append(playback.command.broadcast)

    def _release_the_speaker(self, playback: _Playback) -> None:
        if self._current is playback:
            self._current = None
            self._speaker_free.set()


def _rank(playback: _Playback) -> tuple[int, int, datetime]:
    """Who plays first of those waiting: class, then sender level, then time."""
    command = playback.command
    return (-CLASS_RANK[command.cls], -LEVEL_RANK[command.level], command.issued_at)


def _not_before(starts_at: datetime | None) -> datetime | None:
    """When to start a play sent ahead of its slot: at `starts_at`, unless that is further
    ahead than the control plane ever sends (our clocks disagree): then at once, since a
    bulletin held for hours by a wrong clock is worse than one a little early."""
    if starts_at is None:
        return None
    ahead = (starts_at - datetime.now(UTC)).total_seconds()
    return starts_at if ahead <= MAX_EARLY_S else None


async def _sleep_until(when: datetime | None) -> None:
    if when is not None and (wait := (when - datetime.now(UTC)).total_seconds()) > 0:
        await asyncio.sleep(wait)
