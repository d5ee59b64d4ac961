"""Sections 3 to 5: online, plays, cancels, duplicates, relays and e-boards."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from conformance.base import (
    EBOARD_DISPLAY_S,
    STREAM_START_S,
    KitBase,
    _Failed,
    _Skipped,
)
from devstack.icecast import IcecastServer, StreamSource
from devstack.synth import still_image
from wire import protocol

# 240 KB in the default 64 kbit/s rendition: past INLINE_MEDIA_MAX_BYTES, so it is staged.
STAGED_CLIP_S = 30
STAGE_QUIET_S = 2.0  # a device that answers a stage command does so within this


class CommandChecks(KitBase):
    def _online(self, client: httpx.Client) -> str:
        self._until(
            lambda: client.get(f"/api/v1/clusters/{self.device}").json().get("online"),
            bool,
            "online at the control plane (its birth message)",
        )
        health = self._until(
            lambda: self._health(client),
            lambda h: bool(h.get("telemetry")),
            "a heartbeat",
            timeout_s=max(self.timeout_s, self.heartbeat_s * 1.25),
        )
        return f"online; heard from at {health.get('last_seen_at')}"

    def _plays(self, client: httpx.Client) -> str:
        sha = self._clip(client, 2)
        started = time.monotonic()
        broadcast_id = self._emergency(client, sha, "Conformance: play")
        counts = self._until(
            lambda: self._counts(client, broadcast_id),
            lambda c: c.get("played", 0) == 1 or c.get("failed", 0) or c.get("rejected", 0),
            "the played acknowledgement",
        )
        if counts.get("played") != 1:
            raise _Failed(f"ended as {counts}")
        return f"played in {time.monotonic() - started:.1f} s (2 s clip)"

    def _staged(self, client: httpx.Client) -> str:
        """A clip staged at the confirmation step (4.2): never answered, then played from
        what the device holds. 30 s of audio, too long to ride in the command, so the
        control plane stages it; the play is stopped once received."""
        sha = self._clip(client, STAGED_CLIP_S)
        self._broker()  # listening on the device's topics before the stage command goes
        review = client.post(
            "/api/v1/broadcasts/reach", json={"clusters": [self.device], "media_sha256": sha}
        )
        if review.status_code != 200:
            raise _Failed(f"the confirmation step refused: {review.text[:200]}")
        staged = review.json()["staged"]
        if not staged or not staged["published"]:
            raise _Skipped(f"the control plane did not stage the clip ({staged})")
        time.sleep(STAGE_QUIET_S)
        ack_topic = protocol.ack_topic(self.device)
        answered = [a for a in self._broker().heard(ack_topic) if a.get("cmd") == staged["id"]]
        if answered:
            raise _Failed(f"answered the stage command: {answered[0]}")
        broadcast_id = self._emergency(client, sha, "Conformance: staged")
        state = self._until(
            lambda: client.get(f"/api/v1/broadcasts/{broadcast_id}").json(),
            lambda b: (
                b["confirmed"] == 1 or b["counts"].get("failed") or b["counts"].get("rejected")
            ),
            "the received acknowledgement",
        )
        if state["confirmed"] != 1:
            raise _Failed(f"ended as {state['counts']}")
        self._stop(client, broadcast_id, f"the {STAGED_CLIP_S} s clip")
        return "staged without an answer, then received and stopped"

    def _cancel(self, client: httpx.Client) -> str:
        sha = self._clip(client, 10)
        broadcast_id = self._emergency(client, sha, "Conformance: cancel")
        self._until(
            lambda: self._counts(client, broadcast_id),
            lambda c: c.get("playing", 0) == 1,
            "the playing acknowledgement",
        )
        self._stop(client, broadcast_id, "the 10 s clip")
        return "stopped mid-play, canceled acknowledged"

    def _stop(self, client: httpx.Client, broadcast_id: str, what: str) -> None:
        """Cancel a broadcast under way; the device must answer that it stopped. The
        control plane marks the delivery canceled at once (section 6): only its count of
        stops confirmed (the device's `canceled`) says the device heard."""
        cancelled = client.post(f"/api/v1/broadcasts/{broadcast_id}/cancel")
        if cancelled.status_code != 200:
            raise _Failed(f"cancel refused: {cancelled.text[:200]}")
        self._until(
            lambda: client.get(f"/api/v1/broadcasts/{broadcast_id}").json()["stops_confirmed"],
            lambda stops: stops == 1,
            "the canceled acknowledgement (a stop confirmed)",
        )
        counts = self._counts(client, broadcast_id)
        if counts.get("canceled") != 1:
            raise _Failed(f"{what} was not stopped: {counts}")

    def _duplicate(self, client: httpx.Client) -> str:
        """The very command the control plane signed, delivered again after it played (a
        broker's re-delivery): answered with where it stands, never played twice."""
        sha = self._clip(client, 2)
        broker = self._broker()  # listening before the command goes out
        broadcast_id = self._emergency(client, sha, "Conformance: once")
        self._until(
            lambda: self._counts(client, broadcast_id),
            lambda c: c.get("played", 0) == 1,
            "the played acknowledgement",
        )
        command = self._sent_to_device(lambda c: c.get("broadcast") == broadcast_id)
        answers = len(broker.heard(protocol.ack_topic(self.device)))
        broker.publish(protocol.cluster_command_topic(self.device), json.dumps(command).encode())
        again = self._until(
            lambda: broker.heard(protocol.ack_topic(self.device))[answers:],
            lambda new: any(a.get("cmd") == command["id"] for a in new),
            "an answer to the duplicate",
        )
        stage = next(a.get("stage") for a in again if a.get("cmd") == command["id"])
        counts = self._counts(client, broadcast_id)
        if stage != "played" or counts.get("played") != 1:
            raise _Failed(f"the duplicate answered {stage}; the broadcast {counts}")
        return "answered played, where it stands; played once"

    def _relay(self, client: httpx.Client) -> str:
        self._broker()  # listening, to tell why if it fails
        with self._stream() as (url, whose):
            broadcast_id = self._send(client, "Conformance: relay", stream_url=url)
            try:
                self._until_stage(client, broadcast_id, "playing")
            except _Failed as exc:
                raise _Failed(f"{exc} (relaying {whose})") from None
            if self._counts(client, broadcast_id).get("played"):
                raise _Failed(f"answered played before its end time (relaying {whose})")
            self._stop(client, broadcast_id, "the relay")
        return f"received, playing once audio came (relaying {whose}); stopped by its cancel"

    @contextlib.contextmanager
    def _stream(self) -> Iterator[tuple[str, str]]:
        """(URL, whose) of a live stream to relay: the operator's (`stream_url`), or an
        Icecast of the kit's own fed by ffmpeg, which listens on 127.0.0.1 only: good for
        a vendor's simulator on this machine; a device elsewhere needs `stream_url`."""
        if self.stream_url:
            yield self.stream_url, self.stream_url
            return
        if not (shutil.which("icecast2") and shutil.which("ffmpeg")):
            raise _Skipped("no stream to relay: give --stream-url (or install icecast2, ffmpeg)")
        loop = self._event_loop()
        with tempfile.TemporaryDirectory(prefix="conformance-icecast-") as work:
            server = IcecastServer(Path(work))
            source = StreamSource(server, f"/conformance-{uuid.uuid4().hex[:8]}.mp3")
            try:
                loop.run(server.start(), timeout_s=STREAM_START_S)
                loop.run(source.start(), timeout_s=STREAM_START_S)
            except RuntimeError as exc:
                loop.run(source.stop())
                loop.run(server.stop())
                raise _Skipped(f"the kit's own Icecast did not start: {exc}") from None
            try:
                yield source.url, f"the kit's own Icecast, {source.url}"
            finally:
                loop.run(source.stop())
                loop.run(server.stop())

    def _eboard(self, client: httpx.Client) -> str:
        """What an e-board does that the kit can see: a bulletin with an image (fetched
        and verified like audio, 4.2: a refused fetch fails it) answered received,
        playing (on screen) and played. What the screen shows no message says: the
        operator looks."""
        if self._kind(client) != "eboard":
            raise _Skipped("not an e-board")
        self._broker()  # listening, to tell why if it fails
        text = f"Conformance kit {uuid.uuid4().hex[:6]}: this text on screen"
        broadcast_id = self._send(
            client,
            "Conformance: e-board",
            media_sha256=self._clip(client, 2),
            text=text,
            image_sha256=self._image(client),
            display_s=EBOARD_DISPLAY_S,
        )
        self._until_stage(client, broadcast_id, "played")
        return (
            f"received, playing, played; it should have shown “{text}” and a red picture "
            f"in a red emergency banner for {EBOARD_DISPLAY_S} s (look: no message says)"
        )

    def _image(self, client: httpx.Client) -> str:
        with tempfile.TemporaryDirectory() as work:
            image = still_image(Path(work) / "conformance.png")
            with image.open("rb") as f:
                answer = client.post("/api/v1/media/images", files={"file": (image.name, f)})
        answer.raise_for_status()
        sha: str = answer.json()["sha256"]
        return sha
