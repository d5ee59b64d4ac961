"""The kit's parts every section uses: its settings, a check's result, the loop and
the broker connection it listens with, and the helpers the checks are written in."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from devstack.synth import tone
from wire import protocol
from wire.mqtt_lite import LiteClient, MqttLiteError

POLL_S = 0.1


BROKER_TIMEOUT_S = 10.0


RETAINED_WAIT_S = 2.0  # a retained message comes with the subscription's answer


KEYSET_SETTLE_S = 0.5


STREAM_START_S = 20.0  # Icecast, then ffmpeg, each given 10 s to answer


EBOARD_DISPLAY_S = 3


SLOT_EARLY_S = 1.0  # a device's clock SHOULD be within 1 s of UTC (1.2)


SLOT_LATE_S = 2.0


LOCAL_FALLBACK_S = 10.0  # online, a device waits this long for an item's command (11)


_STAGES = ("delivered", "playing", "played")
_ENDINGS = ("failed", "rejected", "timed_out", "expired", "canceled", "preempted")

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
class KitBase:
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
    # An area the device may be moved to and back for the set_areas check (4.6).
    move_to: str | None = None
    device_password: str | None = None  # its broker password: its own provisioning (10)
    firmware_timeout_s: float = 1800.0  # FIRMWARE_INSTALL_TIMEOUT_S
    _clips: dict[float, str] = field(default_factory=dict)
    _loop: _Loop | None = None
    _mqtt: _Broker | None = None

    def _kind(self, client: httpx.Client) -> str:
        """`speaker_cluster` or `eboard`, as registered."""
        kind: str = client.get(f"/api/v1/clusters/{self.device}").json()["kind"]
        return kind

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


def _seconds_to(instant: datetime) -> float:
    """Seconds from now to `instant` (negative once past)."""
    return (instant - datetime.now(UTC)).total_seconds()
