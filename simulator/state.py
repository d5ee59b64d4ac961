"""What every part of a simulated cluster shares: what it remembers, its clock, and how it
speaks to the control plane (acknowledgements, heartbeats). The parts build on it:
downloads (simulator/downloads.py), the speaker (simulator/speaker.py), remote operations
(simulator/operations.py), and the cluster itself, its link and the messages it hears
(simulator/device.py)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from simulator.spec import Condition, DeviceSpec, Environment
from simulator.stored_schedule import StoredSchedule
from wire import protocol
from wire.mqtt_lite import LiteClient, MqttLiteError
from wire.protocol import Ack, AckStage, Command, Display, Heartbeat, HeldWarning
from wire.signing import TrustStore

SEEN_COMMANDS_MAX = 512  # ids remembered against replays; older ones have long expired


@dataclass
class Playback:
    command: Command
    task: asyncio.Task[None]


class ClusterState:
    """The state and the acknowledgements every part of a cluster uses."""

    # Both are made by SimulatedCluster: they call back into the parts built on this one.
    client: LiteClient
    schedule: StoredSchedule

    def __init__(self, spec: DeviceSpec, env: Environment) -> None:
        self.spec = spec
        self.env = env
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
        self._current: Playback | None = None
        self._queue: list[Playback] = []  # waiting for the speaker
        self._speaker_free = asyncio.Event()
        self.started: list[str] = []  # broadcast ids, in the order they took the speaker
        self._waiting: dict[str, Playback] = {}
        self._media_cache: dict[str, bytes] = {}
        self._staged: dict[str, datetime] = {}  # sha256 -> held until (a stage command)
        self._downloading: dict[str, asyncio.Task[str | None]] = {}  # sha256 -> download
        self.inline_held = 0  # clips taken from the command itself (protocol 4.2)
        self.inline_refused = 0  # inline copies whose sha256 did not match: downloaded
        self.stages_heard = 0  # stage commands that started a fetch
        self.stages_expired = 0  # staged clips dropped unused at their expiry
        # The standard warnings the held schedule document lists, by id (protocol 11.1):
        # their files are held whatever else is dropped, across a reboot too.
        self.warnings: dict[str, HeldWarning] = {}
        self.warnings_fetched = 0  # warning files fetched when a document listed them
        self._run_task: asyncio.Task[None] | None = None
        self._hb_seq = 0
        self.online = asyncio.Event()
        self.play_counts: Counter[str] = Counter()  # broadcast id -> full plays
        self.acks_dropped = 0
        self.acks_sent = 0  # handed to the broker (a replica's ingest counts what it read)
        self.download_retries = 0
        self.downloads = 0  # HTTP fetches attempted (media, images, firmware)
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
        self._outage_over = asyncio.Event()  # set by come_back: the outage ends early
        self.local_plays: Counter[str] = Counter()  # schedule item id -> plays from storage
        self._reported_items: set[str] = set()
        self.local_cut: set[str] = set()  # stored items an emergency cut off
        self._item_commands: dict[str, Command] = {}  # stored item -> command that asked
        self.stream_bytes: Counter[str] = Counter()  # broadcast id -> relayed bytes
        # Live voice (docs/protocol.md 4.4.1): broadcast id -> (wall time, audio position
        # in ms of the session) as each piece arrived and was played: what a latency
        # measurement reads. The first byte's position comes with the stream.
        self.live_positions: dict[str, deque[tuple[float, int]]] = {}
        self.live_audio: dict[str, tuple[int, bytearray]] = {}  # id -> (first byte, bytes)

    def clock(self) -> datetime:
        """The cluster's own clock: what it stamps on its messages and checks validity by
        (its skew is a fault a test can set)."""
        return datetime.now(UTC) + timedelta(seconds=self.condition.clock_skew_s)

    def drop_link(self) -> None:
        """Lose the link abruptly (the broker publishes our Last Will); we reconnect."""
        self.client.drop()

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
