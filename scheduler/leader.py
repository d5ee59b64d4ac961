"""Leader election: on PostgreSQL a session advisory lock; SQLite runs one instance."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x62726F61  # "broa": the scheduler's lock id, fixed across releases


class LeaderLock:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None

    async def try_acquire(self) -> bool:
        """True while we lead. The lock lives as long as our connection, so a crashed
        leader's lock is released by PostgreSQL itself and a standby takes over."""
        if self._engine.dialect.name != "postgresql":
            return True
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT 1"))
                return True
            except Exception:
                log.warning("leader connection lost; standing down")
                await self.release()
        connection = await self._engine.connect()
        got = (
            await connection.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}
            )
        ).scalar_one()
        await connection.commit()
        if got:
            self._connection = connection
            log.info("acquired scheduler leadership")
            return True
        await connection.close()
        return False

    async def release(self) -> None:
        """Give up leadership now. Closing a pooled connection would only return it to the
        pool with the session (and so the lock) still alive: unlock explicitly, and throw
        a broken connection away rather than pool it."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.execute(
                text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY}
            )
            await connection.commit()
        except Exception:
            await connection.invalidate()
        finally:
            await connection.close()
