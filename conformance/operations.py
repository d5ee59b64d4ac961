"""Sections 4.6 and 4.7: device operations and firmware."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import httpx

from conformance.base import (
    KitBase,
    _Failed,
    _Skipped,
)


class OperationChecks(KitBase):
    def _volume(self, client: httpx.Client) -> str:
        self._operation(client, "set_volume", {"volume": 55})
        self._operation(client, "report_status", {})
        self._until(
            lambda: self._telemetry(client).get("volume"),
            lambda volume: volume == 55,
            "volume 55 in its heartbeat",
        )
        return "done; its heartbeat reports volume 55"

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
