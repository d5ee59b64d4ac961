"""Section 4.6 `set_areas` and section 10: a device told new areas listens on them (and
no longer on the old) at once and after a reboot; a device fetches its own provisioning."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from conformance.base import POLL_S, KitBase, _Failed, _Skipped
from wire import protocol

# How long the kit listens for an answer that must not come: a device answers a command
# it hears within a second (the kit's other checks see it in tens of milliseconds).
SILENCE_S = 3.0


class AreaChecks(KitBase):
    def _set_areas(self, client: httpx.Client) -> str:
        """Moved in the register to `move_to`, the device is sent a signed set_areas; after
        its `done` a command on a new area's topic is answered and one on an old area's
        topic it left is not; again after a `reboot` (the kit cannot cut its power: a
        power cycle, 4.8, is the vendor's to try). Moved back at the end, told again."""
        if self.move_to is None:
            raise _Skipped(
                "needs an area the device may be moved to for the check (--move-to AREA, "
                "not above or below its own; it is moved back afterwards)"
            )
        home: str = client.get(f"/api/v1/clusters/{self.device}").json()["area_code"]
        old, new = self._areas_of(client, home), self._areas_of(client, self.move_to)
        joined, left = [a for a in new if a not in old], [a for a in old if a not in new]
        if not joined or not left:
            raise _Failed(f"--move-to {self.move_to}: its areas {new} must differ from {old}")
        self._move(client, self.move_to, new)
        try:
            self._listens(joined[-1], left[-1])
            self._operation(client, "reboot", {})
            self._listens(joined[-1], left[-1])
        finally:
            self._move(client, home, old)
        return (
            f"moved to {self.move_to}: set_areas done, then a command on area {joined[-1]}'s "
            f"topic answered and none on {left[-1]}'s, before and after a reboot; moved back"
        )

    def _areas_of(self, client: httpx.Client, code: str) -> list[str]:
        answer = client.get(f"/api/v1/areas/{code}")
        if answer.status_code != 200:
            raise _Failed(f"area {code}: {answer.text[:200]}")
        return [a for a in answer.json()["path"].split("/") if a]

    def _move(self, client: httpx.Client, area: str, areas: list[str]) -> None:
        """Moved in the register: the control plane sends the device these areas; until
        it answers `done`."""
        moved = client.patch(f"/api/v1/clusters/{self.device}", json={"area_code": area})
        if moved.status_code != 200:
            raise _Failed(f"the control plane refused the move: {moved.text[:300]}")
        command = self._sent_to_device(
            lambda c: c.get("kind") == "set_areas" and (c.get("op") or {}).get("areas") == areas
        )
        topic = protocol.ack_topic(self.device)
        answer: dict[str, Any] = self._until(
            lambda: [
                a
                for a in self._broker().heard(topic)
                if a.get("cmd") == command["id"] and a.get("stage") in ("done", "failed")
            ],
            bool,
            f"set_areas {areas} answered done",
        )[0]
        if answer["stage"] != "done":
            raise _Failed(f"set_areas {areas}: failed ({answer.get('reason')})")

    def _listens(self, joined: str, left: str) -> None:
        """A probe on each area's topic: the device answers the new one (rejected, as it
        is unsigned: it heard it) and says nothing to the old one."""
        on_new, on_old = self._probe(joined), self._probe(left)
        self._answer(on_new)
        deadline = time.monotonic() + SILENCE_S
        topic = protocol.ack_topic(self.device)
        while time.monotonic() < deadline:
            if [a for a in self._broker().heard(topic) if a.get("cmd") == on_old]:
                raise _Failed(f"still listening on area {left}'s topic: it answered there")
            time.sleep(POLL_S)

    def _probe(self, area: str) -> str:
        """An unsigned probe on the area's command topic (harmless: every device there
        refuses it); its id."""
        now = datetime.now(UTC)
        command = protocol.Command.model_validate(
            {
                "id": str(uuid.uuid4()),
                "kind": "probe",
                "broadcast": str(uuid.uuid4()),
                "class": "priority",
                "issued_at": now,
                "expires_at": now + timedelta(minutes=5),
                "target": {"area": area},
                "title": "Conformance: which topics",
            }
        )
        probe = protocol.wire_object(command)
        self._broker().publish(protocol.area_command_topic(area), json.dumps(probe).encode())
        command_id: str = probe["id"]
        return command_id

    def _own_provisioning(self, client: httpx.Client) -> str:
        """The control plane's side of section 10, as the device sees it: with its own
        broker account it gets its entry of the installer's listing plus where to connect
        and how often to speak; a wrong password gets 401."""
        if self.device_password is None:
            raise _Skipped(
                "needs the device's broker password (--device-password): the kit fetches "
                "the device's own provisioning as the device does"
            )
        home = client.get(f"/api/v1/clusters/{self.device}").json()["area_code"]
        listing = client.get("/api/v1/clusters/provisioning", params={"area": home}).json()
        entry = next((e for e in listing if e["code"] == self.device), None)
        if entry is None:
            raise _Failed(f"not in the installer's listing of area {home}")
        path = f"/api/v1/clusters/{self.device}/provisioning"
        with httpx.Client(base_url=self.api_url, timeout=30) as device:
            own = device.get(path, auth=(self.device, self.device_password))
            wrong = device.get(path, auth=(self.device, self.device_password + "x"))
        if own.status_code != 200:
            raise _Failed(f"with its own account: {own.status_code} {own.text[:200]}")
        if wrong.status_code != 401:
            raise _Failed(f"with a wrong password: {wrong.status_code}, not 401")
        answer = own.json()
        differs = sorted(k for k, v in entry.items() if answer.get(k) != v)
        if differs:
            raise _Failed(f"differs from its listing entry in {', '.join(differs)}")
        missing = [k for k in ("broker", "heartbeat_s", "offline_after_missed") if k not in answer]
        if missing or not answer["broker"].get("url"):
            raise _Failed(f"missing {', '.join(missing) or 'broker.url'}")
        return (
            f"its listing entry (areas {'/'.join(answer['areas'])}) and broker "
            f"{answer['broker']['url']}, heartbeat {answer['heartbeat_s']} s; a wrong "
            "password 401"
        )
