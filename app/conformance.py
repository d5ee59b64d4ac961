"""`broadcast conformance --device CODE`: drive one real device (or a vendor's simulator)
through the protocol against a running control plane and its broker, and say, section by
section of docs/protocol.md, what holds (issue 20: a conformance kit for vendors).

The device must be registered, provisioned and online. Every check goes through the
control plane's own API, as an operator would, except what only an attacker would do (a
forged command, section 9), which is published on the device's topic directly; and the
kit listens on the device's topics to see what it was sent and what it answered. For
that the kit needs the broker: the development broker, or an account allowed to read
and write the device's topics.

Each check is independent: one that fails is reported and the next still runs. A check
that needs something the kit cannot arrange is skipped, saying what it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from devices import protocol
from devices.mqtt_lite import LiteClient, MqttLiteError
from devices.signing import SigningKey
from media.icecast import IcecastServer, StreamSource
from media.synth import still_image, tone

POLL_S = 0.1
BROKER_TIMEOUT_S = 10.0
RETAINED_WAIT_S = 2.0  # a retained message comes with the subscription's answer
KEYSET_SETTLE_S = 0.5
STREAM_START_S = 20.0  # Icecast, then ffmpeg, each given 10 s to answer
EBOARD_DISPLAY_S = 3
SLOT_EARLY_S = 1.0  # a device's clock SHOULD be within 1 s of UTC (1.2)
SLOT_LATE_S = 2.0
LOCAL_FALLBACK_S = 10.0  # online, a device waits this long for an item's command (11)

T = TypeVar("T")
Status = Literal["pass", "fail", "skip"]


@dataclass
class Check:
    section: str
    name: str
    status: Status
    detail: str
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == "fail"


class _Failed(Exception):
    pass


class _Skipped(Exception):
    pass


class _Loop:
    """An event loop in a thread of its own: the kit's MQTT connection (and anything else
    asynchronous) lives there, so the checks stay plain sequential code."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="conformance-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = BROKER_TIMEOUT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class _Broker:
    """The kit's own connection to the broker: it keeps, in order, whatever arrives on the
    device's topics (the commands it was sent, what it answered, its heartbeats and
    schedule, the key set), and publishes what an attacker would."""

    def __init__(
        self, loop: _Loop, device: str, client: Callable[[Callable[[str, bytes], None]], LiteClient]
    ) -> None:
        self._loop = loop
        self._client = client(self._on_message)
        self._heard: list[tuple[str, bytes]] = []
        self._published: set[bytes] = set()  # heard back, but nobody else's word
        self._lock = threading.Lock()
        self.topics = (
            protocol.cluster_command_topic(device),
            protocol.ack_topic(device),
            protocol.heartbeat_topic(device),
            protocol.schedule_topic(device),
            protocol.KEYS_TOPIC,
        )

    def _on_message(self, topic: str, payload: bytes) -> None:  # on the loop's thread
        with self._lock:
            self._heard.append((topic, payload))

    def connect(self, host: str, port: int) -> None:
        async def connect() -> None:
            await self._client.connect(host, port)
            refused = await self._client.subscribe(list(self.topics))
            if refused:
                raise MqttLiteError(f"the broker refused the kit {', '.join(refused)}")

        self._loop.run(connect())

    def heard(self, topic: str) -> list[dict[str, Any]]:
        """The JSON objects others published on a topic, oldest first (anything else is
        skipped)."""
        with self._lock:
            payloads = [p for t, p in self._heard if t == topic and p not in self._published]
        found = []
        for payload in payloads:
            try:
                obj = json.loads(payload)
            except ValueError:
                continue
            if isinstance(obj, dict):
                found.append(obj)
        return found

    def publish(self, topic: str, payload: bytes) -> None:
        """Never retained: what the control plane keeps retained stays."""
        with self._lock:
            self._published.add(payload)

        async def publish() -> None:
            future = self._client.publish(topic, payload)
            if future is not None:
                await future

        self._loop.run(publish())

    def close(self) -> None:
        self._loop.run(self._client.disconnect())


@dataclass
class Kit:
    api_url: str
    device: str
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    headers: dict[str, str] | None = None
    timeout_s: float = 30.0
    heartbeat_s: float = 60.0  # the device's interval: its first heartbeat may take that long
    only: frozenset[str] | None = None  # sections to check (as labelled: "4.4", "11"); all
    stream_url: str | None = None  # a live stream the device can reach; else the kit's own
    bulletin_id: str | None = None  # an approved bulletin with audio, for the schedules
    # Takes the device off the network for that many seconds (a vendor's bench: a switch,
    # a script); without it, the play from storage (11) is not checked.
    cut_link: Callable[[float], None] | None = None
    # A schedule's slot is this far ahead, so that its push, the device's confirmation and
    # the control plane's firing ahead of the slot (SCHEDULE_PREFIRE_S, 3 s) come first.
    schedule_lead_s: float = 10.0
    # A device that notices a dead link only at its keep-alive waits 10 s for the command
    # before playing from storage (11): the link stays down that long after the slot.
    link_down_after_slot_s: float = LOCAL_FALLBACK_S + 2
    firmware: str | None = None  # an uploaded, approved image's version, for its model
    firmware_timeout_s: float = 1800.0  # FIRMWARE_INSTALL_TIMEOUT_S
    _clips: dict[float, str] = field(default_factory=dict)
    _loop: _Loop | None = None
    _mqtt: _Broker | None = None

    def checks(self) -> list[tuple[str, str, Callable[[httpx.Client], str]]]:
        """(section, what holds, the step that shows it), in the order they run."""
        return [
            ("3", "online, birth message and heartbeats", self._online),
            ("4, 5", "an emergency plays: received, playing, played", self._plays),
            ("4, 5", "a cancel stops a play under way", self._cancel),
            ("4.1", "a command sent twice plays once", self._duplicate),
            ("4.4", "a relayed stream plays once audio arrives; its cancel stops it", self._relay),
            ("4.5", "an e-board takes a bulletin with an image: on screen, played", self._eboard),
            ("4.6", "set_volume is done, and report_status shows it", self._volume),
            ("4.6", "amplifier off, then on: done, and shown in heartbeats", self._amplifier),
            ("4.6", "self_test answers with its report", self._self_test),
            ("9", "an unsigned command is refused, not played", self._unsigned),
            ("9", "a command signed by a key it does not trust is refused", self._unknown_key),
            ("9", "a signed command altered on the way is refused", self._altered),
            ("9", "a key set signed by a key it does not trust is ignored", self._keyset),
            (
                "11",
                "a schedule not signed by a key it trusts is not taken",
                self._untrusted_schedule,
            ),
            ("11", "a pushed schedule is held, confirmed, played at its slot", self._schedule),
            ("11", "with its link down it plays from storage, then reports it", self._from_storage),
            ("11", "an older schedule replayed is not taken", self._replayed_schedule),
            # Last: the device restarts into the new image.
            ("4.7", "a firmware image installs; it comes back reporting it", self._firmware),
        ]

    def run(self) -> list[Check]:
        results: list[Check] = []
        try:
            with httpx.Client(base_url=self.api_url, timeout=30, headers=self.headers) as client:
                for section, name, step in self.checks():
                    if self.only is None or self.only & set(section.split(", ")):
                        results.append(self._check(client, section, name, step))
        finally:
            self._close()
        return results

    def _check(
        self, client: httpx.Client, section: str, name: str, step: Callable[[httpx.Client], str]
    ) -> Check:
        started = time.monotonic()
        status: Status
        try:
            status, detail = "pass", step(client)
        except _Skipped as exc:
            status, detail = "skip", str(exc)
        except _Failed as exc:
            status, detail = "fail", str(exc)
        except (
            httpx.HTTPError,
            MqttLiteError,
            OSError,
            TimeoutError,
            KeyError,
            ValueError,
        ) as exc:
            status, detail = "fail", f"{type(exc).__name__}: {exc}"
        return Check(section, name, status, detail, time.monotonic() - started)

    def _close(self) -> None:
        if self._mqtt is not None:
            try:
                self._mqtt.close()
            except (MqttLiteError, OSError, TimeoutError):
                pass  # the broker went away: nothing to say goodbye to
            self._mqtt = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    # --- helpers -------------------------------------------------------------------------

    def _until(
        self,
        probe: Callable[[], Any],
        ok: Callable[[Any], bool],
        what: str,
        *,
        timeout_s: float | None = None,
    ) -> Any:
        wait = timeout_s or self.timeout_s
        deadline = time.monotonic() + wait
        value = probe()
        while not ok(value):
            if time.monotonic() > deadline:
                raise _Failed(f"{what}: not within {wait:.3g} s (last seen {value!r:.300})")
            time.sleep(POLL_S)
            value = probe()
        return value

    def _event_loop(self) -> _Loop:
        if self._loop is None:
            self._loop = _Loop()
        return self._loop

    def _broker(self) -> _Broker:
        """Connected at first use, listening on the device's topics from then on."""
        if self._mqtt is None:
            broker = _Broker(self._event_loop(), self.device, self._client)
            broker.connect(self.mqtt_host, self.mqtt_port)
            self._mqtt = broker
        return self._mqtt

    def _client(self, on_message: Callable[[str, bytes], None]) -> LiteClient:
        return LiteClient(
            f"conformance-{uuid.uuid4().hex[:8]}",
            on_message,
            username=self.mqtt_username,
            password=self.mqtt_password,
        )

    def _clip(self, client: httpx.Client, seconds: float) -> str:
        """A tone of that length, uploaded once per run (the control plane normalises and
        renders every upload: seconds of ffmpeg the checks need not repeat)."""
        if seconds in self._clips:
            return self._clips[seconds]
        with tempfile.TemporaryDirectory() as work:
            clip = tone(Path(work) / "conformance.mp3", seconds, sample_rate=16000, bitrate="16k")
            with clip.open("rb") as f:
                answer = client.post("/api/v1/media", files={"file": (clip.name, f)})
        answer.raise_for_status()
        sha: str = answer.json()["sha256"]
        self._clips[seconds] = sha
        return sha

    def _send(self, client: httpx.Client, title: str, **content: Any) -> str:
        """An emergency to this device alone (no bulletin needed, nothing waits for it);
        its id."""
        sent = client.post(
            "/api/v1/broadcasts",
            json={"title": title, "class": "emergency", "clusters": [self.device], **content},
        )
        if sent.status_code != 201:
            raise _Failed(f"the control plane refused the broadcast: {sent.text[:300]}")
        broadcast_id: str = sent.json()["id"]
        return broadcast_id

    def _emergency(self, client: httpx.Client, sha: str, title: str) -> str:
        return self._send(client, title, media_sha256=sha)

    def _counts(self, client: httpx.Client, broadcast_id: str) -> dict[str, int]:
        counts: dict[str, int] = client.get(f"/api/v1/broadcasts/{broadcast_id}").json()["counts"]
        return counts

    def _ingest(self, client: httpx.Client) -> dict[str, int]:
        counts: dict[str, int] = client.get("/api/v1/ingest").json()["counts"]
        return counts

    def _sent_to_device(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The latest command the device was sent (heard on its topic) that matches."""
        topic = protocol.cluster_command_topic(self.device)
        found: list[dict[str, Any]] = self._until(
            lambda: [c for c in self._broker().heard(topic) if match(c)],
            bool,
            "the command on the device's topic",
            timeout_s=BROKER_TIMEOUT_S,
        )
        return found[-1]

    def _answer(self, command_id: str) -> dict[str, Any]:
        """The device's first answer to a command, heard on its ack topic."""
        topic = protocol.ack_topic(self.device)
        answers: list[dict[str, Any]] = self._until(
            lambda: [a for a in self._broker().heard(topic) if a.get("cmd") == command_id],
            bool,
            f"an answer to command {command_id}",
        )
        return answers[0]

    def _refused(self, command_id: str, reason: str) -> None:
        """The device answered the command `rejected` with this reason (section 4.1)."""
        answer = self._answer(command_id)
        said = (answer.get("stage"), answer.get("reason"))
        if said != ("rejected", reason):
            raise _Failed(f"answered {said[0]} ({said[1]}), not rejected ({reason})")

    def _forged(self, title: str) -> dict[str, Any]:
        """An emergency for the device that the control plane never made, unsigned."""
        now = datetime.now(UTC)
        command = protocol.Command.model_validate(
            {
                "id": str(uuid.uuid4()),
                "kind": "play",
                "broadcast": str(uuid.uuid4()),
                "class": "emergency",
                "issued_at": now,
                "expires_at": now + timedelta(minutes=5),
                "target": {"cluster": self.device},
                "title": title,
            }
        )
        return protocol.wire_object(command)

    def _operation(self, client: httpx.Client, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """A device operation to this device, carried out (`done`): the operation read."""
        result = self._operation_result(client, kind, params)
        if result["results"][0]["state"] != "done":
            raise _Failed(f"{kind}: {result['results'][0]}")
        return result

    def _operation_result(
        self, client: httpx.Client, kind: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """A device operation to this device, once the device has answered it."""
        created = client.post(
            "/api/v1/operations", json={"kind": kind, "clusters": [self.device], "params": params}
        )
        if created.status_code != 201:
            raise _Failed(f"{kind} refused by the control plane: {created.text[:200]}")
        operation_id = created.json()["id"]
        result: dict[str, Any] = self._until(
            lambda: client.get(f"/api/v1/operations/{operation_id}").json(),
            lambda o: o["results"] and o["results"][0]["state"] not in ("sent", "accepted"),
            f"{kind}'s answer",
        )
        return result

    def _health(self, client: httpx.Client) -> dict[str, Any]:
        health: dict[str, Any] = client.get(f"/api/v1/clusters/{self.device}/health").json()
        return health

    def _telemetry(self, client: httpx.Client) -> dict[str, Any]:
        """Its latest heartbeat, as the control plane read it (empty before the first)."""
        telemetry: dict[str, Any] = self._health(client).get("telemetry") or {}
        return telemetry

    # --- the checks ------------------------------------------------------------------------

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

    def _volume(self, client: httpx.Client) -> str:
        self._operation(client, "set_volume", {"volume": 55})
        self._operation(client, "report_status", {})
        self._until(
            lambda: self._telemetry(client).get("volume"),
            lambda volume: volume == 55,
            "volume 55 in its heartbeat",
        )
        return "done; its heartbeat reports volume 55"

    def _kind(self, client: httpx.Client) -> str:
        """`speaker_cluster` or `eboard`, as registered."""
        kind: str = client.get(f"/api/v1/clusters/{self.device}").json()["kind"]
        return kind

    def _amplifier(self, client: httpx.Client) -> str:
        if self._kind(client) == "eboard":
            raise _Skipped("an e-board: no amplifier to switch")
        try:
            self._switch_amplifier(client, on=False)
        except (_Failed, httpx.HTTPError):
            # Left on whatever happened: normal plays fail with the amplifier off (4.3).
            with contextlib.suppress(_Failed, httpx.HTTPError):
                self._switch_amplifier(client, on=True)
            raise
        self._switch_amplifier(client, on=True)
        return "done both ways; its heartbeats report amp_on false, then true"

    def _switch_amplifier(self, client: httpx.Client, *, on: bool) -> None:
        self._operation(client, "amplifier", {"on": on})
        self._until(
            lambda: self._telemetry(client).get("amp_on"),
            lambda amp_on: amp_on is on,
            f"amp_on {str(on).lower()} in its heartbeat",
        )

    def _self_test(self, client: httpx.Client) -> str:
        """Done, or failed with the first thing wrong: either is a report (4.6); a device
        that finds a fault in itself answers as it should. The single-cluster operation
        carries no clip (only the province's daily self-test does), so the fresh fetch of
        one is not checked here."""
        operation = self._operation_result(client, "self_test", {})
        result = operation["results"][0]
        if result["state"] == "failed" and result.get("reason"):
            return f"answered failed: {result['reason']} (its own finding: look into it)"
        if result["state"] != "done":
            raise _Failed(f"self_test: {result}")
        asked = datetime.fromisoformat(operation["created_at"])
        self._until(
            lambda: self._telemetry(client).get("received_at"),
            lambda at: at is not None and datetime.fromisoformat(at) > asked,
            "a heartbeat with its state after the self-test",
        )
        return "done (nothing wrong), then a heartbeat with its state"

    def _unsigned(self, client: httpx.Client) -> str:
        before = self._ingest(client).get("signature_rejected", 0)
        forged = self._forged("Conformance: forged")
        topic = protocol.cluster_command_topic(self.device)
        self._broker().publish(topic, json.dumps(forged).encode())
        self._refused(forged["id"], "unsigned")
        self._until(
            lambda: self._ingest(client).get("signature_rejected", 0),
            lambda n: n > before,
            "the refusal counted by the control plane (signature_rejected)",
        )
        return "refused with reason unsigned, and counted"

    def _unknown_key(self, client: httpx.Client) -> str:
        forged = self._forged("Conformance: signed by a stranger")
        topic = protocol.cluster_command_topic(self.device)
        self._broker().publish(topic, SigningKey.generate().sign_json(forged))
        self._refused(forged["id"], "unknown_key")
        return "refused with reason unknown_key"

    def _altered(self, client: httpx.Client) -> str:
        """A genuine command, caught on its way, sent again under a new id and with a
        longer validity (a replay that dodges the duplicate check): its signature no
        longer covers it."""
        operation = self._operation(client, "report_status", {})
        genuine = self._sent_to_device(lambda c: c.get("broadcast") == operation["id"])
        expires = datetime.fromisoformat(genuine["expires_at"]) + timedelta(days=1)
        altered = {
            **genuine,
            "id": str(uuid.uuid4()),
            "expires_at": expires.isoformat().replace("+00:00", "Z"),
        }
        self._broker().publish(
            protocol.cluster_command_topic(self.device), json.dumps(altered).encode()
        )
        self._refused(altered["id"], "bad_signature")
        return "refused with reason bad_signature"

    def _keyset(self, client: httpx.Client) -> str:
        """A key set one version above the retained one, listing a stranger's key beside
        the keys in use, signed by the stranger: a device that took it would then accept
        the stranger's command. The keys in use stay listed, so even a device that takes
        it keeps hearing the control plane; the stranger's key dies with this run."""
        broker = self._broker()
        retained = self._retained_keyset(broker)
        stranger = SigningKey.generate()
        forged = protocol.KeySet(
            version=int(retained["version"]) + 1,
            issued_at=datetime.now(UTC),
            keys=(*retained["keys"], stranger.public_text),
        )
        broker.publish(protocol.KEYS_TOPIC, stranger.sign_json(protocol.wire_object(forged)))
        # The key set and the command travel on different topics, which MQTT does not
        # order: give the device a moment to (not) take the set first.
        time.sleep(KEYSET_SETTLE_S)
        command = self._forged("Conformance: signed by the key of a forged key set")
        broker.publish(protocol.cluster_command_topic(self.device), stranger.sign_json(command))
        try:
            self._refused(command["id"], "unknown_key")
        except _Failed as exc:
            raise _Failed(f"{exc}: it took the key set") from None
        return f"key set version {forged.version} not taken: its signer's command refused"

    def _retained_keyset(self, broker: _Broker) -> dict[str, Any]:
        """The key set the control plane keeps retained (sent to whoever subscribes)."""
        deadline = time.monotonic() + RETAINED_WAIT_S
        while not (heard := broker.heard(protocol.KEYS_TOPIC)) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if not heard:
            raise _Skipped("no key set retained on bc/v1/keys (the control plane publishes it)")
        return heard[0]

    def _last_word(self, broadcast_id: str) -> str:
        """The device's latest answer about a broadcast, with its reason: what a failure
        report needs."""
        answers = [
            a
            for a in self._broker().heard(protocol.ack_topic(self.device))
            if a.get("broadcast") == broadcast_id
        ]
        if not answers:
            return "no answer heard"
        last = answers[-1]
        return f"its last answer: {last.get('stage')} ({last.get('reason') or 'no reason'})"

    def _until_stage(self, client: httpx.Client, broadcast_id: str, stage: str) -> None:
        """Until the device's delivery is at `stage` (or further on the way to played);
        fails with the device's own word if it ends otherwise."""
        onward = _STAGES[_STAGES.index(stage) :]
        counts = self._until(
            lambda: self._counts(client, broadcast_id),
            lambda c: any(c.get(s, 0) for s in (*onward, *_ENDINGS)),
            f"the {stage} acknowledgement",
        )
        if not any(counts.get(s, 0) for s in onward):
            raise _Failed(f"ended {counts}; {self._last_word(broadcast_id)}")

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

    # --- schedules held on the device (11) -------------------------------------------------

    def _untrusted_schedule(self, client: httpx.Client) -> str:
        """Documents one version above the one it holds, with the same items (a device
        that wrongly takes one plays nothing it should not): unsigned, signed by a
        stranger, and a genuine one altered (its version raised). It keeps its own,
        as its heartbeat then says (11)."""
        held = self._schedule_version(client)
        genuine = self._genuine_schedules()
        base = {k: v for k, v in genuine[-1].items() if k != "sig"} if genuine else None
        if base is None:  # never pushed one: an empty document, valid for an hour
            now = datetime.now(UTC)
            base = protocol.wire_object(
                protocol.ScheduleDoc(
                    cluster=self.device,
                    version=0,
                    generated_at=now,
                    valid_until=now + timedelta(hours=1),
                )
            )
        raised = {**base, "version": held + 1}
        forgeries = {
            "unsigned": json.dumps(raised).encode(),
            "signed by a stranger": SigningKey.generate().sign_json(raised),
        }
        if genuine:
            forgeries["altered"] = json.dumps({**raised, "sig": genuine[-1]["sig"]}).encode()
        topic = protocol.schedule_topic(self.device)
        for what, payload in forgeries.items():
            self._broker().publish(topic, payload)
            # A genuine push meanwhile would change what it holds too, but never to this
            # version: the control plane's are milliseconds of its clock.
            if self._schedule_version(client) == held + 1:
                raise _Failed(f"took the {what} document: holds version {held + 1}")
        return f"held version {held}; version {held + 1}, {', '.join(forgeries)}: not taken"

    def _replayed_schedule(self, client: httpx.Client) -> str:
        """A genuine document of its own replayed once a newer one is held: not taken (it
        would bring back an item that has ended, 11). The documents are those the
        schedule checks before it made."""
        genuine = self._genuine_schedules()
        if len(genuine) < 2:
            raise _Skipped("no older schedule of its own heard: it follows the schedule checks")
        newest, older = int(genuine[-1]["version"]), genuine[-2]
        self._until(
            lambda: [
                b
                for b in self._broker().heard(protocol.heartbeat_topic(self.device))
                if (b.get("schedule_version") or 0) >= newest
            ],
            bool,
            f"its heartbeat confirming schedule version {newest}",
        )
        self._broker().publish(protocol.schedule_topic(self.device), json.dumps(older).encode())
        # Not necessarily `newest`: the control plane may push again meanwhile (an item
        # leaving the window), but never anything older.
        if (held := self._schedule_version(client)) < newest:
            raise _Failed(f"took version {older['version']} replayed: holds {held}, not {newest}")
        return f"holds version {held}: version {older['version']} replayed, not taken"

    def _genuine_schedules(self) -> list[dict[str, Any]]:
        """The signed documents the control plane pushed to the device, oldest first."""
        heard = self._broker().heard(protocol.schedule_topic(self.device))
        return sorted((d for d in heard if d.get("sig")), key=lambda d: int(d["version"]))

    def _schedule_version(self, client: httpx.Client) -> int:
        """The schedule version it says it holds, in a heartbeat asked for now."""
        topic = protocol.heartbeat_topic(self.device)
        before = len(self._broker().heard(topic))
        self._operation(client, "report_status", {})
        beats = self._until(
            lambda: self._broker().heard(topic)[before:],
            bool,
            "a heartbeat after report_status",
            timeout_s=BROKER_TIMEOUT_S,
        )
        version: int = beats[-1].get("schedule_version") or 0
        return version

    def _schedule(self, client: httpx.Client) -> str:
        """The item's command is sent a little ahead with `starts_at` the slot: the device
        answers received, holds it, and starts at the slot."""
        length = self._bulletin_length(client)
        self._broker()  # listening before the push
        with self._scheduled(client, "Conformance: schedule") as (schedule_id, slot):
            version = self._held(client, schedule_id)
            firing = self._fired(client, schedule_id, slot)
            started = self._started(client, firing["broadcast_id"], slot, length)
        if started < -SLOT_EARLY_S:
            raise _Failed(f"playing {-started:.1f} s before its slot: starts_at not kept")
        return (
            f"held version {version}, confirmed in a heartbeat; its command played at the "
            f"slot (seen playing {started:+.1f} s from it)"
        )

    def _from_storage(self, client: httpx.Client) -> str:
        """The device holds the item, its link goes down before the command that fires it
        goes out, and stays down across the slot: it plays the item from what it holds,
        reports the play when it is back, and answers the command, which then reaches it,
        with `played`."""
        if self.cut_link is None:
            raise _Skipped(
                "needs a way to take the device off the network (--cut-link): through the "
                "API nothing keeps the command that fires an item from reaching it"
            )
        self._bulletin_length(client)
        self._broker()
        with self._scheduled(client, "Conformance: from storage") as (schedule_id, slot):
            self._held(client, schedule_id)
            cut = datetime.now(UTC)
            self.cut_link((slot - cut).total_seconds() + self.link_down_after_slot_s)
            firing = self._fired(client, schedule_id, slot)
            if datetime.fromisoformat(firing["fired_at"]) <= cut:
                raise _Failed("fired before the link was cut: give a longer --schedule-lead-s")
            started = self._local_play(client, schedule_id, slot)
            self._until_stage(client, firing["broadcast_id"], "played")
        if not -SLOT_EARLY_S <= started <= LOCAL_FALLBACK_S + SLOT_LATE_S:
            raise _Failed(f"played from storage {started:+.1f} s from its slot")
        return (
            f"played from storage {started:+.1f} s from its slot, reported when back; "
            "the slot's command, heard then, answered played"
        )

    def _bulletin_length(self, client: httpx.Client) -> float:
        """The seconds of audio of the bulletin the schedules play."""
        if self.bulletin_id is None:
            raise _Skipped(
                "needs an approved bulletin with audio (--bulletin ID): a schedule plays "
                "one, and approving one takes a second person"
            )
        bulletin = client.get(f"/api/v1/bulletins/{self.bulletin_id}").json()
        if bulletin.get("status") != "approved" or not bulletin.get("media_sha256"):
            raise _Skipped(f"bulletin {self.bulletin_id} is not approved, with audio")
        media = client.get(f"/api/v1/media/{bulletin['media_sha256']}").json()
        length: float = media["duration_ms"] / 1000
        return length

    @contextlib.contextmanager
    def _scheduled(self, client: httpx.Client, title: str) -> Iterator[tuple[str, datetime]]:
        """A one-off play of the bulletin on this device alone, `schedule_lead_s` ahead on a
        whole second (an item is named by its second): (schedule id, slot). Ended after,
        should a failed check leave it waiting."""
        slot = datetime.fromtimestamp(math.ceil(time.time() + self.schedule_lead_s), UTC)
        created = client.post(
            "/api/v1/schedules",
            json={
                "title": title,
                "bulletin_id": self.bulletin_id,
                "timezone": "UTC",
                "starts_local": slot.replace(tzinfo=None).isoformat(),
                "clusters": [self.device],
                "accept_conflicts": True,  # the device's own schedules may overlap it
            },
        )
        if created.status_code != 201:
            raise _Failed(f"the control plane refused the schedule: {created.text[:300]}")
        schedule_id: str = created.json()["id"]
        try:
            yield schedule_id, slot
        finally:
            client.patch(f"/api/v1/schedules/{schedule_id}", json={"status": "ended"})

    def _held(self, client: httpx.Client, schedule_id: str) -> int:
        """The version of the pushed document that carries the schedule's item, once the
        device confirms holding it: its heartbeats' `schedule_version`, which the control
        plane compares (it lists the devices that hold another, 11)."""
        topic, mine = protocol.schedule_topic(self.device), f"{schedule_id}@"
        docs = self._until(
            lambda: [
                d
                for d in self._broker().heard(topic)
                if any(str(i.get("id", "")).startswith(mine) for i in d.get("items", ()))
            ],
            bool,
            "the schedule pushed (retained on its schedule topic)",
        )
        version = int(docs[-1]["version"])
        area = client.get(f"/api/v1/clusters/{self.device}").json()["area_code"]
        self._until(
            lambda: client.get("/api/v1/schedules/out-of-date", params={"area": area}).json(),
            lambda stale: not any(row["cluster"] == self.device for row in stale),
            f"its heartbeat confirming schedule version {version}",
        )
        return version

    def _fired(self, client: httpx.Client, schedule_id: str, slot: datetime) -> dict[str, Any]:
        """The slot's firing (the broadcast the control plane made of it)."""
        firings = self._until(
            lambda: client.get(f"/api/v1/schedules/{schedule_id}/firings").json(),
            bool,
            "the control plane firing the slot",
            timeout_s=_seconds_to(slot) + self.timeout_s,
        )
        firing: dict[str, Any] = firings[0]
        if not firing.get("broadcast_id"):
            raise _Failed(f"the slot was not fired: {firing['outcome']} ({firing['reason']})")
        return firing

    def _started(
        self, client: httpx.Client, broadcast_id: str, slot: datetime, length: float
    ) -> float:
        """Seconds from the slot to when the delivery was first seen playing (or played)."""
        seen: list[float] = []

        def counts() -> dict[str, int]:
            found = self._counts(client, broadcast_id)
            if not seen and (found.get("playing") or found.get("played")):
                seen.append(-_seconds_to(slot))
            return found

        ended = self._until(
            counts,
            lambda c: any(c.get(s, 0) for s in ("played", *_ENDINGS)),
            "the played acknowledgement",
            timeout_s=_seconds_to(slot) + length + self.timeout_s,
        )
        if not ended.get("played"):
            raise _Failed(f"ended {ended}; {self._last_word(broadcast_id)}")
        return seen[0]

    def _local_play(self, client: httpx.Client, schedule_id: str, slot: datetime) -> float:
        """Seconds from the slot to the start of the play from storage the device
        reported (its `at`)."""
        plays = self._until(
            lambda: [
                p
                for p in client.get(f"/api/v1/schedules/{schedule_id}/local-plays").json()
                if p["cluster"] == self.device
            ],
            bool,
            "its report of the play from storage",
            timeout_s=_seconds_to(slot) + self.link_down_after_slot_s + self.timeout_s,
        )
        return (datetime.fromisoformat(plays[0]["started_at"]) - slot).total_seconds()

    # --- firmware (4.7) ----------------------------------------------------------------------

    def _firmware(self, client: httpx.Client) -> str:
        """A rollout of the given image to this device alone: `done` once it is back on
        the new version. The device's own refusals (a manifest not signed by a firmware
        key, another model's image, a damaged image) cannot be provoked through the API,
        which takes only images signed by a firmware key."""
        if self.firmware is None:
            raise _Skipped("no image given (--firmware VERSION: uploaded, approved, its model)")
        created = client.post(
            "/api/v1/rollouts",
            json={
                "firmware": self.firmware,
                "clusters": [self.device],
                "kind": self._kind(client),
                "waves": [{"percent": 100}],
            },
        )
        if created.status_code != 201:
            raise _Failed(f"the control plane refused the rollout: {created.text[:300]}")
        rollout_id = created.json()["id"]
        outcome = self._until(
            lambda: self._install(client, rollout_id),
            lambda row: row.get("state") in ("done", "failed", "skipped", "cancelled"),
            "the install's outcome",
            timeout_s=self.firmware_timeout_s,
        )
        if outcome["state"] != "done":
            raise _Failed(f"{outcome['state']}: {outcome['reason']}")
        self._until(
            lambda: self._telemetry(client).get("firmware"),
            lambda fw: fw == self.firmware,
            f"fw {self.firmware} in its heartbeat",
        )
        return f"{self.firmware} installed: done once back, and its heartbeat reports it"

    def _install(self, client: httpx.Client, rollout_id: int) -> dict[str, Any]:
        rollout = client.get(f"/api/v1/rollouts/{rollout_id}").json()
        rows = [r for r in rollout["clusters"] if r["cluster"] == self.device]
        return rows[0] if rows else {}


def command_cutting_the_link(command: str) -> Callable[[float], None]:
    """`cut_link` for the command line: runs COMMAND with the seconds appended (rounded
    up), in the background, and does not wait for it: it takes the device off the network
    for that long (a switch, a firewall rule on the bench)."""

    def cut(seconds: float) -> None:
        argv = [*shlex.split(command), str(math.ceil(seconds))]
        threading.Thread(target=subprocess.run, args=(argv,), daemon=True).start()

    return cut


def _seconds_to(instant: datetime) -> float:
    """Seconds from now to `instant` (negative once past)."""
    return (instant - datetime.now(UTC)).total_seconds()


# A delivery's way to played, and where else it may end (broadcast/states.py).
_STAGES = ("delivered", "playing", "played")
_ENDINGS = ("failed", "rejected", "timed_out", "expired", "canceled", "preempted")


def report(checks: list[Check]) -> str:
    width = max((len(c.name) for c in checks), default=0)
    lines = [
        f"{c.status.upper():<4}  §{c.section:<5} {c.name:<{width}}  {c.seconds:5.1f} s  {c.detail}"
        for c in checks
    ]
    tally = Counter(c.status for c in checks)
    lines.append(f"{tally['pass']} passed, {tally['fail']} failed, {tally['skip']} skipped")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    return json.dumps([c.__dict__ for c in checks], ensure_ascii=False, indent=2)
