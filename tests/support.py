"""Helpers for tests: a running stack (uvicorn + runtime), waiting on conditions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from app.runtime import Runtime
from core.settings import Settings
from devstack.broker import Broker
from wire.mqtt_lite import LiteClient

DEFAULT_TIMEOUT_S = 30.0
POLL_S = 0.05  # how often a condition is re-checked; the wait ends as soon as it holds

# A port chosen for a stack is held by a bound socket until uvicorn takes it over: between
# choosing a free port and binding it, the kernel could hand the same number to one of the
# fleet's outgoing connections (both come from the ephemeral range), and the stack would
# fail to start with "address already in use".
_reserved: dict[int, socket.socket] = {}


def _tcp_socket() -> socket.socket:
    """A listening socket that names its protocol: asyncio turns Nagle's algorithm off
    (TCP_NODELAY) only on connections whose socket says IPPROTO_TCP, and accepted ones
    copy the listener's. Without it every answer after a connection's first waited ~40 ms
    for the client's delayed ACK before its body went out (headers and body are two
    writes), in every request the tests make."""
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)


@contextlib.asynccontextmanager
async def listening(
    broker: Broker, topics: list[str], name: str = "listener"
) -> AsyncIterator[tuple[LiteClient, list[dict[str, Any]]]]:
    """A bare MQTT client on the test broker, subscribed to `topics` (none: it only
    publishes), and every JSON payload it hears, in order; dropped on leaving."""
    heard: list[dict[str, Any]] = []
    client = LiteClient(name, lambda _topic, payload: heard.append(json.loads(payload)))
    await client.connect(broker.host, broker.port)
    try:
        if topics:
            await client.subscribe(topics)
        yield client, heard
    finally:
        client.drop()


@functools.cache
def system_trust() -> ssl.SSLContext:
    """One TLS context per test process for the tests' HTTP clients: httpx makes a new one
    (the system's certificates read again) for every client, 39 ms of CPU each here, and
    the suite made about 2,000 clients (73 s of its CPU on 2026-12-06)."""
    return ssl.create_default_context()


def reserve_port(host: str = "127.0.0.1") -> int:
    sock = _tcp_socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = int(sock.getsockname()[1])
    _reserved[port] = sock
    return port


def _listening_socket(port: int, host: str = "127.0.0.1") -> socket.socket:
    """The reserved socket for `port`, or a fresh one bound to it (a stack restarted on
    the port it had before)."""
    sock = _reserved.pop(port, None)
    if sock is None:
        sock = _tcp_socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    return sock


async def eventually[T](
    probe: Callable[[], Awaitable[T]],
    condition: Callable[[T], bool],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    what: str = "condition",
) -> T:
    """Re-check `condition(await probe())` until it holds; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if condition(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        await asyncio.sleep(POLL_S)


class QuickServer(uvicorn.Server):
    """uvicorn's server, stopped as soon as it is told. Its own loop looks for
    `should_exit` every 0.1 s, and its shutdown then waits 0.1 s for open connections
    to finish even when there are none: 0.2 s at the end of each of the suite's
    hundreds of stacks. With connections or requests still open, uvicorn's own shutdown
    runs, wait included."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_now = asyncio.Event()

    def stop_soon(self) -> None:
        self.should_exit = True
        self.exit_now.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):  # (it keeps the Date header current)
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.exit_now.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


@dataclass
class Stack:
    """The control plane serving real HTTP on a free port, with its runtime exposed."""

    app: FastAPI
    settings: Settings
    server: QuickServer
    task: asyncio.Task[None]
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def broadcast(self, broadcast_id: str, **params: Any) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/broadcasts/{broadcast_id}", params=params)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    async def wait_broadcast(
        self,
        broadcast_id: str,
        condition: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        what: str = "broadcast state",
    ) -> dict[str, Any]:
        return await eventually(
            lambda: self.broadcast(broadcast_id, unconfirmed_limit=5),
            condition,
            timeout=timeout,
            what=what,
        )

    async def stop(self) -> None:
        await self.client.aclose()
        self.server.stop_soon()
        await self.task


async def start_stack(
    app: FastAPI, settings: Settings, port: int, *, tls: tuple[Path, Path, Path] | None = None
) -> Stack:
    """`tls`: (certificate, key, CA): the API serves https and the test's client trusts
    only that CA."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = QuickServer(config)
    task = asyncio.create_task(server.serve(sockets=[_listening_socket(port)]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before starting")
        await asyncio.sleep(0.01)
    scheme = "https" if tls else "http"
    verify = ssl.create_default_context(cafile=str(tls[2])) if tls else system_trust()
    client = httpx.AsyncClient(base_url=f"{scheme}://127.0.0.1:{port}", timeout=30, verify=verify)
    return Stack(app, settings, server, task, client)


def counts(data: dict[str, Any], state: str) -> int:
    value: int = data["counts"].get(state, 0)
    return value


def two_profile_settings() -> dict[str, Any]:
    """Settings overrides for a province with a second device model that plays Opus."""
    from wire.delivery import DeliveryProfile

    return {
        "delivery_profiles": {
            "mp3-mono-64k": DeliveryProfile(),
            "opus-24k": DeliveryProfile(codec="opus", bitrate_kbps=24),
            "mp3-speech-16k": DeliveryProfile(sample_rate=16000, bitrate_kbps=16),
        },
        "model_profiles": {"LOA-X2": "opus-24k"},
    }
