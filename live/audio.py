"""A live session's audio, in the API process: the officer's Opus (WebM chunks from
MediaRecorder or the CLI) decoded by an ffmpeg per connection, paced in real time into
one MP3 encoder, whose frames fan out to every listening cluster and into the record.

The pacer writes to the encoder every tick whether or not the officer's audio is there:
silence fills a gap (a phone's link dropping for a few seconds), so the clusters' stream
never stalls and resumes with the voice. A small jitter buffer (`jitter_s`) absorbs the
chunking of MediaRecorder (one chunk every LIVE_TIMESLICE_MS) and the network; a buffer
grown past `max_buffer_s` (audio arriving in a burst after an outage) is cut from its
oldest end, so the delay to the speakers stays bounded.

The stream is MP3, mono, 48 kHz, 64 kbit/s, constant bit rate: at 48 kHz a 1,152-sample
frame is exactly 192 bytes (144 x 64,000 / 48,000, never padded), so a byte offset is an
audio position (8,000 bytes a second) and every listener joins on a frame boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import wave
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
SAMPLE_BYTES = 2  # s16le, mono
BYTE_RATE = 8_000  # the MP3 stream: 64 kbit/s
FRAME_BYTES = 192  # one MP3 frame, 24 ms
TICK_S = 0.1  # the pacer's step: 100 ms of audio to the encoder each time
KEPT_S = 10.0  # stream kept for a listener that falls behind (a slow 4G link) before it skips
READ_BYTES = 4096
# Frames handed to the listeners at once: 8 (192 ms). Every hand-over wakes each
# listening cluster's connection, so at 1,639 clusters one a frame (24 ms) would be 68,000
# wake-ups a second; this is 8,500, for 0.1 s more delay on average.
PUBLISH_FRAMES = 8

ENCODER = [
    "-hide_banner", "-loglevel", "error", "-nostdin",
    "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
    "-c:a", "libmp3lame", "-b:a", "64k", "-ar", str(SAMPLE_RATE), "-ac", "1",
    "-write_xing", "0", "-id3v2_version", "0", "-flush_packets", "1", "-f", "mp3", "pipe:1",
]  # fmt: skip
# Probing off: a WebM stream's header names its codec, and ffmpeg's default probe (5 s of
# analysis) would hold the first words that long.
DECODER = [
    "-hide_banner", "-loglevel", "error", "-nostdin",
    "-probesize", "4096", "-analyzeduration", "0", "-fflags", "nobuffer",
    "-f", "matroska", "-i", "pipe:0",
    "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-flush_packets", "1", "pipe:1",
]  # fmt: skip


def _samples(seconds: float) -> int:
    return int(seconds * SAMPLE_RATE)


class LiveAudio:
    """One session's pacer, encoder, fan-out and record. `start()`, then `feed()` the
    officer's PCM (through a `Decoder`), `finish()` (what is buffered is played out) or
    `stop()` (at once); listeners `read_from()` the stream until it ends."""

    def __init__(
        self, recording: Path, *, jitter_s: float, max_buffer_s: float, ffmpeg: str = "ffmpeg"
    ) -> None:
        self.recording = recording
        self._jitter = _samples(jitter_s) * SAMPLE_BYTES
        self._max_buffer = _samples(max(max_buffer_s, jitter_s + TICK_S)) * SAMPLE_BYTES
        self._ffmpeg = ffmpeg
        self._input = bytearray()
        self._primed = False
        self._finishing = False
        self.input_samples = 0  # the officer's audio received, all connections
        self.dropped_samples = 0  # cut from a buffer grown too long
        self.silence_samples = 0  # silence written since the officer's first word (gaps)
        self.written_samples = 0  # to the encoder, silence included
        self.recorded_samples = 0
        # (officer's sample, stream sample) each time the voice (re)starts after silence:
        # how a latency measurement maps a marker it sent to the stream's position.
        self.resumes: list[tuple[int, int]] = []
        self._consumed = 0  # the officer's samples taken into the stream
        self._record: wave.Wave_write | None = None
        self._encoder: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._chunks: deque[tuple[int, bytes]] = deque()  # (offset, frames)
        self._end = 0  # stream bytes so far
        self._pending = bytearray()
        self._wake = asyncio.Event()
        self.ended = asyncio.Event()
        self.started_at = 0.0  # time.time() of the stream's first sample
        self.last_input_at = time.monotonic()

    async def start(self) -> None:
        self._encoder = await asyncio.create_subprocess_exec(
            self._ffmpeg,
            *ENCODER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._tasks = [
            asyncio.create_task(self._pace(), name="live-pacer"),
            asyncio.create_task(self._frames(), name="live-frames"),
        ]

    def feed(self, pcm: bytes) -> None:
        """The officer's audio, decoded. Once the session is finishing nothing more is
        taken: the officer may still be connected (a cancel from another console, "end"
        pressed on the API), and audio still arriving would keep the pacer from draining,
        so the session would never end."""
        if self._finishing:
            return
        self.last_input_at = time.monotonic()
        self.input_samples += len(pcm) // SAMPLE_BYTES
        self._input += pcm
        excess = len(self._input) - self._max_buffer
        if excess > 0:
            excess -= excess % SAMPLE_BYTES
            del self._input[:excess]
            self.dropped_samples += excess // SAMPLE_BYTES
            self._consumed += excess // SAMPLE_BYTES

    async def finish(self) -> None:
        """Play out what the officer has said, then end the stream cleanly."""
        self._finishing = True
        await self.ended.wait()

    async def stop(self) -> None:
        """End at once (a cancel, a lost officer, shutdown): the stream still ends cleanly;
        the clusters are told to stop by a cancel command."""
        self._input.clear()
        self._finishing = True
        await self.ended.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._encoder is not None and self._encoder.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._encoder.kill()
            await self._encoder.wait()
        self._close_record()
        self.ended.set()
        self._wake.set()

    @property
    def recorded_s(self) -> float:
        return self.recorded_samples / SAMPLE_RATE

    @property
    def byte_offset(self) -> int:
        """Where a listener joining now starts: the live edge."""
        return self._end

    def stream_ms_of(self, officer_ms: float) -> float | None:
        """The stream's position (ms, as `X-Live-Offset` counts it) at which the officer's
        audio at `officer_ms` (from the first sample received) went out; None if not yet."""
        sample = _samples(officer_ms / 1000)
        found = None
        for officer, stream in self.resumes:
            if officer <= sample:
                found = stream + (sample - officer)
        return None if found is None else found * 1000 / SAMPLE_RATE

    async def read_from(self, offset: int) -> tuple[int, bytes]:
        """(offset, bytes) of the stream from `offset`, waiting for some; b"" once it has
        ended. A listener too far behind skips to the oldest bytes kept."""
        while offset >= self._end:
            if self.ended.is_set():
                return offset, b""
            await self._wake.wait()
        offset = max(offset, self._chunks[0][0])
        # From the newest back: a listener at the live edge wants the last piece only, and
        # this runs for every cluster at every hand-over (the whole kept list, walked from
        # the front, would be 50 steps each).
        parts = []
        first = offset
        for first, chunk in reversed(self._chunks):
            parts.append(chunk)
            if first <= offset:
                break
        parts.reverse()
        return offset, b"".join(parts)[offset - first :]

    def _take(self, samples: int) -> bytes:
        """`samples` of the officer's audio, silence where there is none."""
        want = samples * SAMPLE_BYTES
        if not self._primed and (len(self._input) >= self._jitter or self._finishing):
            self._primed = bool(self._input)
            if self._primed:
                self.resumes.append((self._consumed, self.written_samples))
        if not self._primed:
            if self.resumes:  # a gap in the voice, not the wait for its first word
                self.silence_samples += samples
            return bytes(want)
        real = bytes(self._input[:want])
        del self._input[: len(real)]
        self._consumed += len(real) // SAMPLE_BYTES
        if len(real) < want:  # the officer's audio ran out: wait for the jitter again
            self._primed = False
            self.silence_samples += (want - len(real)) // SAMPLE_BYTES
        return real + bytes(want - len(real))

    async def _pace(self) -> None:
        encoder = self._encoder
        assert encoder is not None and encoder.stdin is not None
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.started_at = time.time()
        try:
            while True:
                due = _samples(loop.time() - t0) - self.written_samples
                if due > 0:
                    if self._finishing and not self._input and not self._primed:
                        break
                    pcm = self._take(due)
                    self.written_samples += due
                    self._write_record(pcm)
                    encoder.stdin.write(pcm)
                    await encoder.stdin.drain()
                elif self._finishing and not self._input:
                    break
                next_tick = t0 + (self.written_samples / SAMPLE_RATE) + TICK_S
                await asyncio.sleep(max(0.0, next_tick - loop.time()))
        except (BrokenPipeError, ConnectionResetError):
            log.warning("live: the encoder stopped taking audio")
        finally:
            self._close_record()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                encoder.stdin.close()

    def _write_record(self, pcm: bytes) -> None:
        """The record starts at the officer's first word and holds what the clusters
        heard from then on, gaps included."""
        if self._record is None:
            if not self.resumes:
                return
            self._record = wave.open(str(self.recording), "wb")
            self._record.setnchannels(1)
            self._record.setsampwidth(SAMPLE_BYTES)
            self._record.setframerate(SAMPLE_RATE)
        if self._finishing and not self._primed and not self._input:
            return  # the tail after the last word: the session is ending
        self._record.writeframes(pcm)
        self.recorded_samples += len(pcm) // SAMPLE_BYTES

    def _close_record(self) -> None:
        if self._record is not None:
            self._record.close()
            self._record = None

    async def _frames(self) -> None:
        encoder = self._encoder
        assert encoder is not None and encoder.stdout is not None
        try:
            while data := await encoder.stdout.read(READ_BYTES):
                self._pending += data
                whole = len(self._pending) - len(self._pending) % FRAME_BYTES
                if whole >= PUBLISH_FRAMES * FRAME_BYTES:
                    self._publish(bytes(self._pending[:whole]))
                    del self._pending[:whole]
            if self._pending:
                self._publish(bytes(self._pending))
            await encoder.wait()
        finally:
            self.ended.set()
            self._wake.set()

    def _publish(self, frames: bytes) -> None:
        self._chunks.append((self._end, frames))
        self._end += len(frames)
        while self._chunks and self._chunks[0][0] < self._end - KEPT_S * BYTE_RATE:
            self._chunks.popleft()
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()


class Decoder:
    """One connection's WebM/Opus to PCM, fed into the session as it decodes."""

    def __init__(self, audio: LiveAudio, ffmpeg: str = "ffmpeg") -> None:
        self._audio = audio
        self._ffmpeg = ffmpeg
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.received = 0

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            self._ffmpeg,
            *DECODER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._reader = asyncio.create_task(self._read(), name="live-decoder")

    async def write(self, data: bytes) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        self.received += len(data)
        try:
            process.stdin.write(data)
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            log.warning("live: the decoder refused the audio (not WebM/Opus?)")

    async def close(self) -> None:
        """The connection ended: what is decoded reaches the session first."""
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                process.stdin.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), 5.0)
            except TimeoutError:
                self._reader.cancel()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()

    async def _read(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        odd = b""
        while data := await process.stdout.read(READ_BYTES):
            data = odd + data
            cut = len(data) - len(data) % SAMPLE_BYTES
            odd = data[cut:]
            self._audio.feed(data[:cut])
