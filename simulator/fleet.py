"""A fleet of simulated clusters in one process, started in bounded connect waves."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from simulator.device import SimulatedCluster
from simulator.spec import DeviceSpec, Environment, Faults

log = logging.getLogger(__name__)

CONNECT_WAVE = 200  # connections opened at once: the broker's listen backlog is finite
DOWNLOADS_IN_FLIGHT = 50  # per simulator process: more in flight only adds head-of-line waiting


class Fleet:
    def __init__(
        self,
        specs: Iterable[DeviceSpec],
        *,
        host: str,
        port: int,
        faults: Faults | None = None,
        time_compression: float = 1.0,
        heartbeat_s: float = 60.0,
        local_addr: str | None = None,
        seed: int | None = None,
        tls_ca: Path | None = None,
        live_report: str | None = None,
    ) -> None:
        self.env = Environment(
            host=host,
            port=port,
            downloads=asyncio.Semaphore(DOWNLOADS_IN_FLIGHT),
            faults=faults or Faults(),
            time_compression=time_compression,
            heartbeat_s=heartbeat_s,
            local_addr=local_addr,
            rng=random.Random(seed),
            tls=ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else None,
            live_report=live_report,
        )
        self.devices = {spec.code: SimulatedCluster(spec, self.env) for spec in specs}

    def __len__(self) -> int:
        return len(self.devices)

    async def start(self, codes: Iterable[str] | None = None, *, timeout: float = 60.0) -> None:
        """Bring devices online in waves and wait until each has connected and subscribed."""
        chosen = (
            [self.devices[c] for c in codes] if codes is not None else list(self.devices.values())
        )
        for start in range(0, len(chosen), CONNECT_WAVE):
            wave = chosen[start : start + CONNECT_WAVE]
            for device in wave:
                device.start()
            await asyncio.wait_for(asyncio.gather(*(d.online.wait() for d in wave)), timeout)

    async def stop(self, codes: Iterable[str] | None = None, *, clean: bool = True) -> None:
        chosen = (
            [self.devices[c] for c in codes] if codes is not None else list(self.devices.values())
        )
        await asyncio.gather(*(d.stop(clean=clean) for d in chosen))

    async def close(self) -> None:
        await self.stop()

    def split(self, fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
        """A reproducible (chosen, rest) split of the fleet's codes."""
        codes = sorted(self.devices)
        chosen = set(random.Random(seed).sample(codes, round(len(codes) * fraction)))
        return sorted(chosen), [c for c in codes if c not in chosen]

    def play_counts(self, broadcast_id: str) -> Counter[str]:
        return Counter({c: d.play_counts[broadcast_id] for c, d in self.devices.items()})

    def count(self, predicate: Callable[[SimulatedCluster], bool]) -> int:
        return sum(1 for d in self.devices.values() if predicate(d))
