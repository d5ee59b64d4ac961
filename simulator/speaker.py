"""A simulated cluster's speaker (or an e-board's screen): one play at a time, an
emergency pre-empting, the rest queued by rank; clips played, streams relayed, bulletins
shown; a cancel stops what it names."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from datetime import UTC, datetime

from simulator import http_lite
from simulator.downloads import Downloads
from simulator.state import Playback
from wire import media_auth
from wire.protocol import CLASS_RANK, LEVEL_RANK, AckStage, Command, CommandClass, StreamRef

STREAM_STALL_S = 5.0  # a relay silent this long is dead (Icecast sends continuously)
STREAM_CHUNK_BYTES = 16 * 1024
PREEMPTED_REASON = "preempted by a higher-priority broadcast"
MAX_EARLY_S = 60.0  # a play sent further ahead of its starts_at than this: clocks disagree
LIVE_POSITIONS_KEPT = 3000  # (time, position) pairs per live broadcast: 10 min at 5 a second


class Speaker(Downloads):
    def _cancel(self, command: Command) -> None:
        self._canceled.add(command.broadcast)
        self.cancels.add(command.broadcast)
        for playback in (self._current, self._waiting.get(command.broadcast)):
            if playback is not None and playback.command.broadcast == command.broadcast:
                playback.task.cancel()
        self._ack(command, AckStage.CANCELED)

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
        if stream.live:
            return await self._relay_live(command, stream)
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

    async def _relay_live(self, command: Command, stream: StreamRef) -> str | None:
        """A person speaking now (docs/protocol.md 4.4.1): the URL proved like media's,
        "playing" at the first audio bytes, and the stream's clean end (its terminating
        chunk) is the end of the play; a connection that dies is not. Each piece's audio
        position (the first byte's comes in `X-Live-Offset`, bytes at `X-Live-Byte-Rate`)
        is noted with the time it was played, for the latency benchmark."""
        spec = self.spec
        url = media_auth.device_url(
            stream.url, code=spec.code, areas=spec.areas, key=spec.media_key
        )
        try:
            status, headers, reader, writer = await http_lite.open_live(url)
        except (OSError, TimeoutError, http_lite.HttpLiteError) as exc:
            return f"stream unreachable: {exc.__class__.__name__}"
        try:
            if status != 200:
                return f"stream unreachable: HTTP {status}"
            offset = int(headers.get("x-live-offset", "0"))
            rate = max(1, int(headers.get("x-live-byte-rate", "8000")))
            positions = self.live_positions.setdefault(
                command.broadcast, deque(maxlen=LIVE_POSITIONS_KEPT)
            )
            kept = self.live_audio.setdefault(command.broadcast, (offset, bytearray()))
            received = 0
            while True:
                try:
                    async with asyncio.timeout(STREAM_STALL_S):
                        chunk = await http_lite.read_chunk(reader)
                except TimeoutError:
                    return f"stream stalled: no audio for {STREAM_STALL_S:.0f} s"
                except http_lite.HttpLiteError:
                    return "stream ended before its end time"
                if chunk is None:
                    return None  # the officer finished: played
                if not received:
                    self._ack(command, AckStage.PLAYING)
                received += len(chunk)
                self.stream_bytes[command.broadcast] += len(chunk)
                positions.append((time.time(), (offset + received) * 1000 // rate))
                if self.env.keep_live_audio and kept[0] + len(kept[1]) == offset + received - len(
                    chunk
                ):
                    kept[1].extend(chunk)
        finally:
            writer.close()
            if self.env.live_report and command.broadcast in self.live_positions:
                self._report_positions(command.broadcast, self.env.live_report)

    def _report_positions(self, broadcast: str, path: str) -> None:
        """One line per stream: {code, broadcast, positions: [[time, ms], ...]}, written
        in one append (lines of several processes never interleave)."""
        line = json.dumps(
            {
                "code": self.spec.code,
                "broadcast": broadcast,
                "positions": [[round(t, 4), p] for t, p in self.live_positions[broadcast]],
            }
        )
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    async def _take_the_speaker(self, playback: Playback) -> None:
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

    def _release_the_speaker(self, playback: Playback) -> None:
        if self._current is playback:
            self._current = None
            self._speaker_free.set()


def _rank(playback: Playback) -> tuple[int, int, datetime]:
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
