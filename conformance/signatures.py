"""Section 9: what a device must refuse, and the key sets it must not take."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from conformance.base import (
    KEYSET_SETTLE_S,
    POLL_S,
    RETAINED_WAIT_S,
    KitBase,
    _Broker,
    _Failed,
    _Skipped,
)
from wire import protocol
from wire.signing import SigningKey


class SignatureChecks(KitBase):
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
