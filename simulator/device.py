"""One simulated cluster: verifies commands, fetches media, plays, acknowledges each stage.

This module is the cluster itself: its link to the broker (connect, resume, heartbeats,
a clean or abrupt end) and the messages it hears (commands, key sets, schedules). What it
does with them is in the parts it is made of: simulator/state.py (what it remembers, its
acknowledgements), simulator/downloads.py, simulator/speaker.py (playing, showing,
relaying, cancelling) and simulator/operations.py (a technician's remote commands)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from simulator.operations import Operations
from simulator.speaker import PREEMPTED_REASON, Speaker
from simulator.spec import DeviceSpec, Environment
from simulator.state import Playback
from simulator.stored_schedule import StoredSchedule
from wire import protocol
from wire.mqtt_lite import LiteClient, MqttLiteError
from wire.protocol import (
    Ack,
    AckStage,
    Command,
    CommandKind,
    ProtocolError,
    ScheduleItem,
    Status,
)
from wire.signing import SignatureError

log = logging.getLogger(__name__)

RECONNECT_BASE_S = 0.5  # a cluster on 4G retries quickly, then backs off
RECONNECT_CAP_S = 10.0
KEEPALIVE_S = 30
OFFLINE_ACK_TIMEOUT_S = 2.0  # a clean shutdown waits this long for its last word


class SimulatedCluster(Operations, Speaker):
    def __init__(self, spec: DeviceSpec, env: Environment) -> None:
        super().__init__(spec, env)
        self.client = LiteClient(spec.code, self._on_message, keepalive=KEEPALIVE_S)
        self.schedule = StoredSchedule(
            connected=lambda: self.client.connected,
            play_locally=self._play_item,
            prefetch=self._fetch,
        )

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
        for task in [*self._operations, *self._downloading.values()]:
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

    def go_offline(self, seconds: float) -> None:
        """Lose the link and stay off the network for a while (a 4G outage), or until
        `come_back`."""
        self._offline_until = time.monotonic() + seconds
        self._outage_over.clear()
        self.client.drop()

    def come_back(self) -> None:
        """The outage ends now: a test waits for what must happen while the cluster is
        away (its stored play, a broadcast expiring) and then brings it back, rather than
        guessing the outage's length (those guesses were seconds of every such test)."""
        self._offline_until = 0.0
        self._outage_over.set()

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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outage_over.wait(), outage)
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

    async def power_cycle(self) -> None:
        """The power goes off and comes back: what plays stops, the link drops without a
        word (the broker publishes the Will), and the device boots with only what it keeps
        in non-volatile memory (docs/protocol.md 4.8): the ids of unexpired commands it
        heard (a replay within their validity must not sound twice), the broadcasts it was
        told to cancel, its held schedule and the plays from it not yet reported, its
        standard warnings and their files (a media cache that survives a reboot). A
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
        if command.kind is CommandKind.STAGE:
            self._on_stage(command, payload, raw)
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
            self._waiting[command.broadcast] = Playback(command, task)

    def _on_stage(self, command: Command, payload: bytes, raw: dict[str, Any]) -> None:
        """A stage command is checked as any other and never answered (protocol 4.2):
        nothing rides on it, and the control plane's acknowledgement path stays free for
        the play that follows."""
        try:
            self.env.check_signature(self.trust, payload, raw)
        except SignatureError as exc:
            self.rejected.append(f"{exc.problem.value}: {command.id}")
            return
        self._remember(command.id, None, command.expires_at)
        target = command.target
        if command.is_expired(self.clock()):
            self.rejected.append(f"expired: {command.id}")
        elif not (target.cluster == self.spec.code or (target.area and target.area in self._areas)):
            self.rejected.append(f"misaddressed: {command.id}")
        else:
            self._stage(command)

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
            self._hold_warnings(doc.warnings, until=doc.valid_until)
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
        self._waiting[command.broadcast] = Playback(command, task)
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
