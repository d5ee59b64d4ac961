"""A whole province running as separate processes: broker (and edge brokers), a fresh
database migrated and seeded, the API (and replicas), a media server and the simulated
fleet online. The benchmarks measure it (bench/); `broadcast screenshots` photographs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from devstack.broker import Broker, BrokerTier, free_port
from devstack.orchestrate import (
    BENCH_SEED,
    StackProcesses,
    api_ready,
    python_module,
    run_module,
    stack_env,
    start_api,
    start_media_server,
    start_simulator,
    wait_until,
)

# The local PostgreSQL's administrative database (as the tests use it).
PG_ADMIN_DSN = os.environ.get(
    "BROADCAST_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def fresh_postgres_database() -> tuple[str, Callable[[], Coroutine[Any, Any, None]]]:
    """A new, empty database on the local PostgreSQL, and the coroutine that drops it."""
    import asyncpg

    admin_dsn = PG_ADMIN_DSN
    name = f"broadcast_loadtest_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", drop


@dataclass(frozen=True)
class Replica:
    process: subprocess.Popen[bytes]
    url: str

    def leads(self) -> bool:
        """Whether it holds the job leadership (re-sends, expiry, the scheduler)."""
        metrics = httpx.get(f"{self.url}/metrics", timeout=5).text
        return "\nbroadcast_job_leader 1.0" in metrics


@dataclass(frozen=True)
class Province:
    """A running demo province: broker, API (jobs in-process), media server, simulators."""

    stack: StackProcesses
    database_url: str
    work: Path
    edges: list[Broker]  # brokers bridged to the core, holding the clusters (may be none)
    replicas: list[Replica]  # the first is stack.api

    @property
    def broker(self) -> Broker:
        assert self.stack.broker is not None
        return self.stack.broker


@contextmanager
def province_stack(
    *,
    clusters: int,
    processes: int,
    database_url: str | None,
    console: Console,
    heartbeat_s: float = 60.0,
    offline: float = 0.0,
    simulator_args: tuple[str, ...] = (),
    online_share: float = 1.0,
    edges: int = 0,
    replicas: int = 1,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Province]:
    """The whole stack as separate processes, seeded with `clusters` clusters online but
    the `offline` share, which never connects (`simulator_args`: more `broadcast simulate`
    options, faults; `online_share`: of those, how many must be online at once before it
    starts, when links keep dropping; `settings`: the control plane's BROADCAST_ variables
    that differ from the defaults); stopped (and a fresh PostgreSQL database dropped) on
    the way out."""
    work = Path(tempfile.mkdtemp(prefix="loadtest-"))
    url = database_url or f"sqlite+aiosqlite:///{work}/loadtest.db"
    drop_database = None
    if url == "postgresql":
        url, drop_database = asyncio.run(fresh_postgres_database())
    tier = BrokerTier(edges).start()
    broker = tier.core
    api_port, media_port = free_port(), free_port()
    env = stack_env(
        database_url=url,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        api_port=api_port,
        media_dir=work / "media",
        media_port=media_port,
    )
    env.update(settings or {})
    stack = StackProcesses(env=env, api_url=f"http://127.0.0.1:{api_port}", broker=broker)
    try:
        run_module("app", "db", "upgrade", env=env)
        run_module(
            "app", "seed", "demo", *BENCH_SEED, "--clusters", str(clusters), "--no-eboards", env=env
        )
        start_api(stack, api_port, log=work / "api.log")
        assert stack.api is not None
        apis = [Replica(stack.api, stack.api_url)]
        for k in range(1, replicas):  # on the same database and broker: they share the acks
            apis.append(start_replica(stack, free_port(), log=work / f"api-{k}.log"))
        start_media_server(stack, media_port)
        console.print(f"API up; starting {clusters} clusters in {processes} simulator processes")
        start_simulator(
            stack,
            "--processes",
            str(processes),
            "--heartbeat",
            str(heartbeat_s),
            "--offline",
            str(offline),
            *simulator_args,
            *(f"--edge-port={edge.port}" for edge in tier.edges),
            # Each simulator process leaves out its own share of its shard.
            expected=round(
                online_share
                * sum(
                    len(range(i, clusters, processes))
                    - round(len(range(i, clusters, processes)) * offline)
                    for i in range(processes)
                )
            ),
            log=work / "simulator.log",
        )
        yield Province(stack, url, work, tier.edges, apis)
    finally:
        stack.stop()  # the core broker with it
        for edge in tier.edges:
            edge.close()
        if drop_database is not None:
            asyncio.run(drop_database())


def start_replica(stack: StackProcesses, port: int, log: Path) -> Replica:
    """Another control-plane process beside the first (stopped with the stack)."""
    process = python_module("app", "serve", "--port", str(port), env=stack.env, log=log)
    stack.extra.append(process)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: api_ready(url), timeout=60, what="a replica of the API")
    return Replica(process, url)
