"""Real parts: a Mosquitto with the project's configuration on a free port, SQLite and
PostgreSQL (the PostgreSQL leg is skipped, saying so, when no server answers), ffmpeg."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from accounts import passwords
from app.main import create_app
from audit import append_only
from core.clock import Clock
from core.database import Base, create_engine
from core.migrate import upgrade
from core.models import import_all_models
from core.settings import Settings
from devstack.broker import Broker
from devstack.icecast import IcecastServer
from devstack.synth import tone
from simulator.fleet import Fleet
from simulator.spec import DeviceSpec, Faults
from tests.support import Stack, reserve_port, start_stack

PG_ADMIN_DSN = os.environ.get(
    "BROADCAST_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashes() -> Iterator[None]:
    """argon2id at its lowest cost in the tests' own process: production's 64 MiB and
    three passes took ~130 ms a hash and as much a check here, for every person a test
    makes and every sign-in, and no test is about that cost. Hashes are still argon2id,
    checked the same way (tests/security/test_accounts.py); control planes run as
    processes keep the real cost."""
    quick = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", quick)
        patch.setattr(passwords, "_DUMMY_HASH", quick.hash("not a real password"))
        yield


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    with Broker() as running:
        yield running


async def _pg_available() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    await conn.close()
    return None


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated, empty database on each backend, made once per session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "test.db"
        url = f"sqlite+aiosqlite:///{path}"
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()
        yield url
        return
    problem = await _pg_available()
    if problem is not None:
        pytest.skip(f"PostgreSQL leg skipped: no server answers at {PG_ADMIN_DSN} ({problem})")
    name = f"broadcast_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def clean_db(database_url: str) -> str:
    """Empty every table before the test (schema stays migrated)."""
    import_all_models()
    engine = create_engine(database_url)
    dialect = engine.dialect.name
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE areas SET parent_id = NULL"))  # self-reference
        # The audit log refuses deletes (audit/append_only.py): lifted for the emptying only.
        for statement in append_only.drop_statements(dialect):
            await conn.execute(text(statement))
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(text(f'DELETE FROM "{table.name}"'))
        for statement in append_only.create_statements(dialect):
            await conn.execute(text(statement))
    await engine.dispose()
    return database_url


@pytest.fixture
def settings_factory(clean_db: str, broker: Broker, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        port = overrides.pop("http_port", None) or reserve_port()
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": clean_db,
            "mqtt_host": broker.host,
            "mqtt_port": broker.port,
            "public_base_url": f"http://127.0.0.1:{port}",
            "media_dir": tmp_path / "media",
            "resend_base_s": 1.0,
            "resend_cap_s": 4.0,
            "played_grace_s": 2.0,
            "sweep_interval_s": 0.2,
            "link_batch_window_s": 0.05,  # tests wait on births and heartbeats throughout
            "mqtt_share_group": f"g{uuid.uuid4().hex[:8]}",  # tests never steal each other's acks
            # Keys of the test's own: what an earlier test left retained on the shared broker
            # (a schedule, a key set) is signed by a key this test's clusters do not trust.
            "secret_key": uuid.uuid4().hex + uuid.uuid4().hex,
            "self_test_at": None,  # the daily self-test only where a test asks for it
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def stack(settings_factory: Callable[..., Settings]) -> AsyncIterator[Stack]:
    settings = settings_factory()
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    running = await start_stack(create_app(settings), settings, port)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def stack_factory(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    """A stack with settings overridden and perhaps a clock of the test's (several may run
    at once, each on its own port; stopping one early is fine)."""
    started: list[Stack] = []

    async def make(clock: Clock | None = None, **overrides: Any) -> Stack:
        settings = settings_factory(**overrides)
        port = int(settings.public_base_url.rsplit(":", 1)[1])
        running = await start_stack(create_app(settings, clock), settings, port)
        started.append(running)
        return running

    yield make
    for running in reversed(started):
        await running.stop()


@pytest.fixture
async def fleet_factory(broker: Broker) -> AsyncIterator[Callable[..., Fleet]]:
    fleets: list[Fleet] = []

    def make(specs: list[DeviceSpec], **options: Any) -> Fleet:
        options.setdefault("faults", Faults())
        fleet = Fleet(specs, host=broker.host, port=broker.port, seed=7, **options)
        fleets.append(fleet)
        return fleet

    yield make
    await asyncio.gather(*(f.close() for f in fleets))


@pytest.fixture(scope="session")
async def icecast(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[IcecastServer]:
    """A real Icecast server for the session (it takes a second to stop); each test feeds
    its own mounts with ffmpeg."""
    server = IcecastServer(tmp_path_factory.mktemp("icecast"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def tone_mp3(audio_dir: Path) -> Path:
    """One second of 440 Hz, as MP3: a short bulletin."""
    return tone(audio_dir / "tone-1s.mp3", 1, sample_rate=16000, bitrate="16k")


@pytest.fixture(scope="session")
def long_mp3(audio_dir: Path) -> Path:
    """Thirty seconds: long enough to cancel mid-playback."""
    return tone(audio_dir / "tone-30s.mp3", 30, sample_rate=16000, bitrate="16k")


@pytest.fixture(scope="session")
def tone_wav(audio_dir: Path) -> Path:
    return tone(audio_dir / "tone-1s.wav", 1, sample_rate=16000)
