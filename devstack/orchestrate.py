"""Start the whole stack as separate processes: broker, API, simulator (demo, load test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.broker import Broker, free_port, port_open

READY_TIMEOUT_S = 60.0

# The benchmarks seed old Bình Phước (`--as-of 2025-06-30`): its 11 districts give the
# alert storm its waves, and the figures stay comparable with those recorded before the
# reform (docs/benchmarks.md).
BENCH_SEED = ("--as-of", "2025-06-30")


def python_module(
    module: str, *args: str, env: dict[str, str], quiet: bool = False, log: Path | None = None
) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log else (subprocess.DEVNULL if quiet else None)
    # Its own process group, so stopping it also stops whatever it started.
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )


def run_module(module: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout}s")
        time.sleep(every)


def online_count(api_url: str) -> int:
    try:
        r = httpx.get(
            f"{api_url}/api/v1/clusters", params={"online": "true", "limit": 1}, timeout=5
        )
        return int(r.json()["total"]) if r.status_code == 200 else -1
    except (httpx.HTTPError, ValueError, KeyError):
        return -1


@dataclass
class StackProcesses:
    """The processes we started, stopped in reverse order."""

    env: dict[str, str]
    api_url: str
    broker: Broker | None = None
    api: subprocess.Popen[bytes] | None = None
    simulator: subprocess.Popen[bytes] | None = None
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        procs = [p for p in (self.simulator, *self.extra, self.api) if p is not None]
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        if self.broker is not None:
            self.broker.close()


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Only a process not yet reaped: until then its pid, and so its group, is ours; after,
    the pid may be anyone's (pids wrap at 32,768 on these machines)."""
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def stack_env(
    *,
    database_url: str,
    mqtt_host: str,
    mqtt_port: int,
    api_port: int,
    media_dir: Path,
    media_port: int | None = None,
) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        BROADCAST_DATABASE_URL=database_url,
        BROADCAST_MQTT_HOST=mqtt_host,
        BROADCAST_MQTT_PORT=str(mqtt_port),
        BROADCAST_PUBLIC_BASE_URL=f"http://127.0.0.1:{api_port}",
        BROADCAST_MEDIA_DIR=str(media_dir),
    )
    if media_port is not None:
        env["BROADCAST_MEDIA_BASE_URL"] = f"http://127.0.0.1:{media_port}"
    return env


def api_on_sqlite(work: Path) -> StackProcesses:
    """A broker and an API process of their own on a SQLite file in `work`, migrated and
    serving: what the single-purpose benches (ingest, sign-in) measure against."""
    broker = Broker().start()
    api_port = free_port()
    env = stack_env(
        database_url=f"sqlite+aiosqlite:///{work}/bench.db",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        api_port=api_port,
        media_dir=work / "media",
    )
    stack = StackProcesses(env=env, api_url=f"http://127.0.0.1:{api_port}", broker=broker)
    run_module("app", "db", "upgrade", env=env)
    return stack


def demo_api_on_sqlite(work: Path) -> StackProcesses:
    """`api_on_sqlite` with the demo province seeded and the API serving (the sign-in and
    flood benches); everything started is stopped again if a step fails."""
    stack = api_on_sqlite(work)
    try:
        run_module("app", "seed", "demo", *BENCH_SEED, env=stack.env)
        start_api(stack, int(stack.api_url.rsplit(":", 1)[1]), log=work / "api.log")
    except BaseException:
        stack.stop()
        raise
    return stack


def start_media_server(stack: StackProcesses, port: int) -> None:
    proc = python_module("app", "media-serve", "--port", str(port), env=stack.env, quiet=True)
    stack.extra.append(proc)
    wait_until(lambda: port_open("127.0.0.1", port), timeout=READY_TIMEOUT_S, what="media server")


def start_broker_if_needed(host: str, port: int) -> tuple[Broker | None, int]:
    """Use a broker already listening there; otherwise start one with mosquitto.conf."""
    if port_open(host, port):
        return None, port
    broker = Broker(port=port if not port_open("127.0.0.1", port) else free_port())
    return broker.start(), broker.port


def start_api(stack: StackProcesses, port: int, log: Path | None = None) -> None:
    stack.api = python_module("app", "serve", "--port", str(port), env=stack.env, log=log)
    wait_until(lambda: api_ready(stack.api_url), timeout=READY_TIMEOUT_S, what="the API")


def api_ready(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_simulator(
    stack: StackProcesses, *args: str, expected: int, log: Path | None = None
) -> None:
    stack.simulator = python_module(
        "app", "simulate", "--api", stack.api_url, *args, env=stack.env, log=log
    )
    wait_until(
        lambda: online_count(stack.api_url) >= expected,
        timeout=READY_TIMEOUT_S * 2 + expected / 250,  # 50,000 clusters: 5 more minutes
        what=f"{expected} clusters online",
        every=0.25,
    )
