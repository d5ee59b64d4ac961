"""One scheduler leads at a time; a standby takes over when the leader's connection ends."""

from __future__ import annotations

import pytest

from core.database import create_engine
from scheduler.leader import LeaderLock


async def test_only_one_leader_and_a_standby_takes_over(database_url: str) -> None:
    engine_a, engine_b = create_engine(database_url), create_engine(database_url)
    leader, standby = LeaderLock(engine_a), LeaderLock(engine_b)
    try:
        if engine_a.dialect.name != "postgresql":
            # SQLite mode runs a single scheduler by design: the lock always grants.
            assert await leader.try_acquire() and await standby.try_acquire()
            pytest.skip("leader election needs PostgreSQL; SQLite runs one instance")
        assert await leader.try_acquire() is True
        assert await standby.try_acquire() is False
        assert await leader.try_acquire() is True, "the leader keeps its lock"
        await leader.release()  # the leader's process dies: its connection closes
        assert await standby.try_acquire() is True
        assert await leader.try_acquire() is False
    finally:
        await leader.release()
        await standby.release()
        await engine_a.dispose()
        await engine_b.dispose()
