"""What a simulated cluster is and what surrounds it: its provisioned spec, the faults a
test injects, what its sensors read, and what every device of one fleet shares."""

from __future__ import annotations

import asyncio
import random
import ssl
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from wire import protocol
from wire.protocol import Command, MediaRef
from wire.signing import TrustStore

VERIFIED_MAX = 256  # commands a process remembers as parsed and verified


@dataclass(frozen=True)
class DeviceSpec:
    code: str
    kind: str  # speaker_cluster | eboard
    areas: tuple[str, ...]  # area codes from the root down
    firmware: str = "sim-1.0"
    profile: str | None = None  # delivery profile of its model (which rendition it plays)
    media_key: str = ""  # from provisioning: proves who it is to the media server
    trusted_keys: tuple[str, ...] = ()  # from provisioning: whose signatures it accepts
    firmware_keys: tuple[str, ...] = ()  # from provisioning: whose firmware images it installs
    model: str | None = None  # hardware model: a firmware image for another is refused


@dataclass
class Faults:
    """What can go wrong, per device, as probabilities and delays."""

    ack_loss: float = 0.0  # share of acknowledgements silently dropped
    latency_s: float = 0.0  # extra delay before each acknowledgement, uniform 0..latency
    # (so with a latency, a device's acknowledgements also arrive out of order)
    duplicate_acks: float = 0.0  # share of acknowledgements sent twice (QoS 1 redelivery)
    media_corrupt: float = 0.0  # share of downloads whose bytes come back altered
    firmware_failure: float = 0.0  # share of firmware installs that do not boot
    ignore_schedules: bool = False  # takes no pushed schedule (a device without section 11)


@dataclass
class Condition:
    """What a cluster's sensors read (docs/protocol.md section 3); faults change it."""

    power: Literal["mains", "battery"] = "mains"
    supply_v: float = 221.0
    amp_on: bool = True
    amp_temp_c: float = 41.0
    speakers: int = 2
    speaker_faults: tuple[int, ...] = ()
    relay_trip: Literal["overvoltage", "undervoltage", "phase_loss"] | None = None
    rssi: int = -71
    clock_skew_s: float = 0.0
    hung: bool = False  # connected but silent: no heartbeats at all
    amp_dead: bool = False  # the amplifier does not answer its controller
    install_fails: bool = False  # a new firmware image will not boot on it (rolled back)

    def lose_mains(self) -> None:
        self.power, self.supply_v = "battery", 12.4


@dataclass
class Environment:
    """What every device of one fleet shares: broker, media client, clock compression."""

    host: str
    port: int
    downloads: asyncio.Semaphore  # media downloads in flight at once from this process
    faults: Faults = field(default_factory=Faults)
    time_compression: float = 1.0  # 10 = a 60 s bulletin plays in 6 s
    heartbeat_s: float = 60.0
    local_addr: str | None = None
    rng: random.Random = field(default_factory=random.Random)
    tls: ssl.SSLContext | None = None  # broker and media over TLS, trusting this CA
    # Keep every byte of a live stream each device heard (tests compare it with the
    # recording); off for fleets of thousands (8 kB a second each).
    keep_live_audio: bool = False
    live_report: str | None = None  # a file: each live stream's positions, when it ends
    # A real fleet parses and verifies each command on every cluster's own CPU at once;
    # simulated clusters share this machine's cores, where 10,000 signature checks of one
    # area command cost about a second, and parsing it was 44 % of a simulator's time
    # (docs/benchmarks.md). So a process does each once per payload and its clusters share
    # the result: the parsed command is frozen, and the object it came from is only read.
    verified: OrderedDict[tuple[bytes, frozenset[str]], None] = field(default_factory=OrderedDict)
    parsed: OrderedDict[bytes, tuple[Command, dict[str, Any]]] = field(default_factory=OrderedDict)
    # The same for a clip carried in a command: decoding and hashing 40 KB cost 0.3 ms a
    # cluster here (0.5 s of one process's CPU at 1,639 clusters); each cluster still
    # decides for itself whether to use it.
    inline: OrderedDict[tuple[str, str], bytes | None] = field(default_factory=OrderedDict)

    def inline_bytes(self, media: MediaRef) -> bytes | None:
        """`media.inline_bytes()`, once per clip and process."""
        if media.data is None:
            return None
        key = (media.sha256, media.data)
        if key not in self.inline:
            _keep_recent(self.inline, key, media.inline_bytes())
        return self.inline[key]

    def check_signature(self, trust: TrustStore, payload: bytes, obj: dict[str, Any]) -> None:
        """`trust.check(obj)` (obj parsed from payload), once per payload and keys."""
        key = (payload, trust.kids)
        if key in self.verified:
            return
        trust.check(obj)  # a failure is not remembered: every cluster refuses it itself
        _keep_recent(self.verified, key, None)

    def parse_command(self, payload: bytes) -> tuple[Command, dict[str, Any]]:
        """`protocol.parse_signed(Command, payload)`, once per payload (a malformed one is
        refused by every cluster itself)."""
        found = self.parsed.get(payload)
        if found is None:
            found = protocol.parse_signed(Command, payload)
            _keep_recent(self.parsed, payload, found)
        return found


def _keep_recent[K, V](memo: OrderedDict[K, V], key: K, value: V) -> None:
    memo[key] = value
    if len(memo) > VERIFIED_MAX:
        memo.popitem(last=False)
