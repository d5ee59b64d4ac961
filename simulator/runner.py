"""`broadcast simulate`: run simulated clusters until told to stop. No database imports."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from core import heap
from simulator.fleet import Fleet
from simulator.provisioning import fetch_specs
from simulator.spec import DeviceSpec, Faults

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulateOptions:
    api_url: str
    broker_host: str
    broker_port: int
    # Edge brokers' ports: child process i connects to edge_ports[i % n] (same host)
    # instead of broker_port, spreading the clusters over brokers bridged to the core.
    edge_ports: tuple[int, ...] = ()
    clusters: int | None = None  # None: every provisioned cluster
    area: str | None = None
    processes: int = 1
    shard: tuple[int, int] = (0, 1)  # (index, count)
    offline: float = 0.0  # share of clusters that never connect
    ack_loss: float = 0.0
    latency_s: float = 0.0
    churn_per_min: float = 0.0  # share of online clusters that drop their link each minute
    flapping: float = 0.0  # share of clusters whose link drops every FLAP_EVERY_S seconds
    duplicate_acks: float = 0.0  # share of acknowledgements sent twice
    clock_skew_s: float = 0.0  # a third of the clusters this far ahead, a third behind
    time_compression: float = 1.0
    heartbeat_s: float = 60.0
    bind: str | None = None  # local address, to spread many connections over 127.0.0.x
    seed: int = 1
    # A file each cluster appends to when a live stream ends: the audio positions it
    # played and when (the latency benchmark reads it).
    live_report: str | None = None


# A fleet's own full collections paused a quarter of it for 0.1 to 0.3 s after settling,
# walking every cluster's sleeping heartbeat and keep-alive timers (docs/benchmarks.md).
SIM_FULL_COLLECTION_EVERY = 100


def shard_specs(specs: list[DeviceSpec], options: SimulateOptions) -> list[DeviceSpec]:
    chosen = specs[: options.clusters] if options.clusters else specs
    index, count = options.shard
    return chosen[index::count]


async def run_fleet(options: SimulateOptions, stop: asyncio.Event) -> None:
    specs = shard_specs(await fetch_specs(options.api_url, area=options.area), options)
    fleet = Fleet(
        specs,
        host=options.broker_host,
        port=options.broker_port,
        faults=Faults(
            ack_loss=options.ack_loss,
            latency_s=options.latency_s,
            duplicate_acks=options.duplicate_acks,
        ),
        time_compression=options.time_compression,
        heartbeat_s=options.heartbeat_s,
        local_addr=options.bind,
        seed=options.seed + options.shard[0],
        live_report=options.live_report,
    )
    offline, online = fleet.split(options.offline, seed=options.seed)
    for k, code in enumerate(sorted(fleet.devices)):
        fleet.devices[code].condition.clock_skew_s = options.clock_skew_s * (k % 3 - 1)
    await fleet.start(online)
    heap.settle(full_collection_every=SIM_FULL_COLLECTION_EVERY)
    print(f"ready {len(online)} online, {len(offline)} offline", flush=True)
    tasks = []
    if options.churn_per_min:
        tasks.append(asyncio.create_task(_churn(fleet, online, options)))
    if options.flapping:
        flapping = sorted(fleet.env.rng.sample(online, round(len(online) * options.flapping)))
        tasks.append(asyncio.create_task(_flap(fleet, flapping)))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await fleet.close()


async def _churn(fleet: Fleet, codes: list[str], options: SimulateOptions) -> None:
    """Drop links at random (the broker sends their Last Will); devices reconnect."""
    rng = fleet.env.rng
    per_tick = max(1, round(len(codes) * options.churn_per_min / 60))
    while True:
        await asyncio.sleep(1.0)
        for code in rng.sample(codes, min(per_tick, len(codes))):
            fleet.devices[code].drop_link()


FLAP_EVERY_S = 4.0


async def _flap(fleet: Fleet, codes: list[str]) -> None:
    """The same clusters lose their link again and again (a weak 4G cell), each at its own
    moment in every period."""
    rng = fleet.env.rng
    offsets = sorted((rng.random() * FLAP_EVERY_S, code) for code in codes)
    loop = asyncio.get_running_loop()
    start = loop.time()
    period = 0
    while True:
        for offset, code in offsets:
            await asyncio.sleep(max(0.0, start + period * FLAP_EVERY_S + offset - loop.time()))
            fleet.devices[code].drop_link()
        period += 1


def run(options: SimulateOptions) -> None:
    """Run in this process, or fan out to `processes` child processes (one shard each)."""
    if options.processes > 1:
        _run_children(options)
        return

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_fleet(options, stop)

    try:
        import uvloop  # installed with uvicorn[standard]; a leaner event loop for many sockets
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


def _run_children(options: SimulateOptions) -> None:
    children = []
    for i in range(options.processes):
        args = [
            sys.executable,
            "-m",
            "simulator",
            "--api",
            options.api_url,
            "--broker-host",
            options.broker_host,
            "--broker-port",
            str(options.edge_ports[i % len(options.edge_ports)])
            if options.edge_ports
            else str(options.broker_port),
            "--shard",
            f"{i}/{options.processes}",
            "--offline",
            str(options.offline),
            "--ack-loss",
            str(options.ack_loss),
            "--latency",
            str(options.latency_s),
            "--churn",
            str(options.churn_per_min),
            "--flapping",
            str(options.flapping),
            "--duplicate-acks",
            str(options.duplicate_acks),
            "--clock-skew",
            str(options.clock_skew_s),
            "--time-compression",
            str(options.time_compression),
            "--heartbeat",
            str(options.heartbeat_s),
            "--seed",
            str(options.seed),
            "--bind",
            f"127.0.0.{2 + i}",
        ]
        if options.clusters:
            args += ["--clusters", str(options.clusters)]
        if options.area:
            args += ["--area", options.area]
        if options.live_report:
            args += ["--live-report", options.live_report]
        children.append(subprocess.Popen(args, env=os.environ.copy()))

    def forward(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds to `finally`, which stops the children

    signal.signal(signal.SIGTERM, forward)
    try:
        for child in children:
            child.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait()
