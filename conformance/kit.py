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

import json
import math
import shlex
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from conformance.areas import AreaChecks
from conformance.base import (
    Check,
    Status,
    _Failed,
    _Skipped,
)
from conformance.commands import CommandChecks
from conformance.operations import OperationChecks
from conformance.schedules import ScheduleChecks
from conformance.signatures import SignatureChecks
from wire.mqtt_lite import MqttLiteError


@dataclass
class Kit(CommandChecks, OperationChecks, AreaChecks, SignatureChecks, ScheduleChecks):
    def checks(self) -> list[tuple[str, str, Callable[[httpx.Client], str]]]:
        """(section, what holds, the step that shows it), in the order they run."""
        return [
            ("3", "online, birth message and heartbeats", self._online),
            ("4, 5", "an emergency plays: received, playing, played", self._plays),
            ("4, 5", "a cancel stops a play under way", self._cancel),
            ("4.1", "a command sent twice plays once", self._duplicate),
            ("4.2", "a clip staged at the confirmation: not answered, then received", self._staged),
            ("4.4", "a relayed stream plays once audio arrives; its cancel stops it", self._relay),
            ("4.5", "an e-board takes a bulletin with an image: on screen, played", self._eboard),
            ("4.6", "set_volume is done, and report_status shows it", self._volume),
            ("4.6", "amplifier off, then on: done, and shown in heartbeats", self._amplifier),
            ("4.6", "self_test answers with its report", self._self_test),
            (
                "4.6",
                "set_areas: the new areas' topics heard, the old left, across a reboot",
                self._set_areas,
            ),
            ("10", "its own provisioning, fetched with its broker account", self._own_provisioning),
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


def command_cutting_the_link(command: str) -> Callable[[float], None]:
    """`cut_link` for the command line: runs COMMAND with the seconds appended (rounded
    up), in the background, and does not wait for it: it takes the device off the network
    for that long (a switch, a firewall rule on the bench)."""

    def cut(seconds: float) -> None:
        argv = [*shlex.split(command), str(math.ceil(seconds))]
        threading.Thread(target=subprocess.run, args=(argv,), daemon=True).start()

    return cut


# A delivery's way to played, and where else it may end (broadcast/states.py).


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
