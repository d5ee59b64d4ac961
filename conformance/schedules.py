"""Section 11: schedules held on the device, and plays from storage."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from conformance.base import (
    _ENDINGS,
    BROKER_TIMEOUT_S,
    LOCAL_FALLBACK_S,
    SLOT_EARLY_S,
    SLOT_LATE_S,
    KitBase,
    _Failed,
    _seconds_to,
    _Skipped,
)
from wire import protocol
from wire.signing import SigningKey


class ScheduleChecks(KitBase):
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
