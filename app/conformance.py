"""`broadcast conformance --device CODE`: drive one real device (or a vendor's simulator)
through the protocol against a running control plane and its broker, and say, section by
section of docs/protocol.md, what holds (issue 20: a conformance kit for vendors).

The device must be registered, provisioned and online. Every check goes through the
control plane's own API, as an operator would, except the forged command (section 9),
which is published on the device's topic directly, as an attacker would; for that the kit
needs the broker (development broker, or an account allowed to write command topics).

Each check is independent: one that fails is reported and the next still runs.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from devices import protocol
from devices.mqtt_lite import LiteClient
from media.synth import tone

POLL_S = 0.1


@dataclass
class Check:
    section: str
    name: str
    passed: bool
    detail: str
    seconds: float = 0.0


class _Failed(Exception):
    pass


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
    _clips: dict[float, str] = field(default_factory=dict)

    def run(self) -> list[Check]:
        checks: list[Check] = []
        with httpx.Client(base_url=self.api_url, timeout=30, headers=self.headers) as client:
            for section, name, step in (
                ("3", "online, birth message and heartbeats", self._online),
                ("4, 5", "an emergency plays: received, playing, played", self._plays),
                ("4, 5", "a cancel stops a play under way", self._cancel),
                ("4.6", "set_volume is done, and report_status shows it", self._volume),
                ("9", "an unsigned command is refused, not played", self._unsigned),
                ("4.1", "a command sent twice plays once", self._duplicate),
            ):
                started = time.monotonic()
                try:
                    passed, detail = True, step(client)
                except (_Failed, httpx.HTTPError, KeyError, ValueError) as exc:
                    passed, detail = False, f"{type(exc).__name__}: {exc}"
                checks.append(Check(section, name, passed, detail, time.monotonic() - started))
        return checks

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
                raise _Failed(f"{what}: not within {wait:g} s (last seen {value!r:.300})")
            time.sleep(POLL_S)
            value = probe()
        return value

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

    def _emergency(self, client: httpx.Client, sha: str, title: str) -> str:
        sent = client.post(
            "/api/v1/broadcasts",
            json={
                "title": title,
                "class": "emergency",
                "clusters": [self.device],
                "media_sha256": sha,
            },
        )
        if sent.status_code != 201:
            raise _Failed(f"the control plane refused the broadcast: {sent.text[:300]}")
        broadcast_id: str = sent.json()["id"]
        return broadcast_id

    def _counts(self, client: httpx.Client, broadcast_id: str) -> dict[str, int]:
        counts: dict[str, int] = client.get(f"/api/v1/broadcasts/{broadcast_id}").json()["counts"]
        return counts

    def _ingest(self, client: httpx.Client) -> dict[str, int]:
        counts: dict[str, int] = client.get("/api/v1/ingest").json()["counts"]
        return counts

    # --- the checks ------------------------------------------------------------------------

    def _online(self, client: httpx.Client) -> str:
        self._until(
            lambda: client.get(f"/api/v1/clusters/{self.device}").json().get("online"),
            bool,
            "online at the control plane (its birth message)",
        )
        health = self._until(
            lambda: client.get(f"/api/v1/clusters/{self.device}/health").json(),
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
        cancelled = client.post(f"/api/v1/broadcasts/{broadcast_id}/cancel")
        if cancelled.status_code != 200:
            raise _Failed(f"cancel refused: {cancelled.text[:200]}")
        counts = self._until(
            lambda: self._counts(client, broadcast_id),
            lambda c: c.get("canceled", 0) == 1 or c.get("played", 0) == 1,
            "the canceled acknowledgement",
        )
        if counts.get("canceled") != 1:
            raise _Failed(f"the 10 s clip was not stopped: {counts}")
        return "stopped mid-play, canceled acknowledged"

    def _operation(self, client: httpx.Client, kind: str, params: dict[str, Any]) -> dict[str, Any]:
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
        if result["results"][0]["state"] != "done":
            raise _Failed(f"{kind}: {result['results'][0]}")
        return result

    def _volume(self, client: httpx.Client) -> str:
        self._operation(client, "set_volume", {"volume": 55})
        self._operation(client, "report_status", {})
        self._until(
            lambda: client.get(f"/api/v1/clusters/{self.device}/health").json(),
            lambda h: (h.get("telemetry") or {}).get("volume") == 55,
            "volume 55 in its heartbeat",
        )
        return "done; its heartbeat reports volume 55"

    def _publish_raw(self, topic: str, payload: bytes) -> None:
        async def send() -> None:
            client = self._client(lambda _t, _p: None)
            await client.connect(self.mqtt_host, self.mqtt_port)
            future = client.publish(topic, payload)
            if future is not None:
                await future
            await client.disconnect()

        asyncio.run(send())

    def _unsigned(self, client: httpx.Client) -> str:
        before = self._ingest(client).get("signature_rejected", 0)
        now = datetime.now(UTC)
        forged = protocol.Command.model_validate(
            {
                "id": str(uuid.uuid4()),
                "kind": "play",
                "broadcast": str(uuid.uuid4()),
                "class": "emergency",
                "issued_at": now,
                "expires_at": now + timedelta(minutes=5),
                "target": {"cluster": self.device},
                "title": "Conformance: forged",
            }
        )
        self._publish_raw(protocol.cluster_command_topic(self.device), forged.to_json())
        self._until(
            lambda: self._ingest(client).get("signature_rejected", 0),
            lambda n: n > before,
            "a rejected acknowledgement with reason unsigned (counted signature_rejected)",
        )
        return "refused with reason unsigned"

    def _duplicate(self, client: httpx.Client) -> str:
        """The very command the control plane signed, delivered again after it played (a
        broker's re-delivery): answered with where it stands, never played twice."""
        sha = self._clip(client, 2)
        topic = protocol.cluster_command_topic(self.device)

        async def scenario() -> str:
            seen: list[bytes] = []
            listener = self._client(lambda _t, payload: seen.append(payload))
            await listener.connect(self.mqtt_host, self.mqtt_port)
            await listener.subscribe([topic])
            try:
                broadcast_id = await asyncio.to_thread(
                    self._emergency, client, sha, "Conformance: once"
                )
                await asyncio.to_thread(
                    self._until,
                    lambda: self._counts(client, broadcast_id),
                    lambda c: c.get("played", 0) == 1,
                    "the played acknowledgement",
                )
                command = next(
                    (p for p in seen if json.loads(p).get("broadcast") == broadcast_id), None
                )
                if command is None:
                    raise _Failed("the command was not seen on the device's topic")
                before = await asyncio.to_thread(self._ingest, client)
                future = listener.publish(topic, command)
                if future is not None:
                    await future
                await asyncio.to_thread(
                    self._until,
                    lambda: self._ingest(client).get("acks_received", 0),
                    lambda n: n > before.get("acks_received", 0),
                    "an answer to the duplicate",
                )
                counts = await asyncio.to_thread(self._counts, client, broadcast_id)
            finally:
                await listener.disconnect()
            if counts.get("played") != 1:
                raise _Failed(f"after the duplicate: {counts}")
            return "answered with where it stands; played once"

        return asyncio.run(scenario())

    def _client(self, on_message: Callable[[str, bytes], None]) -> LiteClient:
        return LiteClient(
            f"conformance-{uuid.uuid4().hex[:8]}",
            on_message,
            username=self.mqtt_username,
            password=self.mqtt_password,
        )


def report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [
        f"{'PASS' if c.passed else 'FAIL'}  §{c.section:<5} {c.name:<{width}}  {c.seconds:5.1f} s  "
        f"{c.detail}"
        for c in checks
    ]
    passed = sum(c.passed for c in checks)
    lines.append(f"{passed}/{len(checks)} passed")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    return json.dumps([c.__dict__ for c in checks], ensure_ascii=False, indent=2)
