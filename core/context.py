"""What a flow or a route needs of the running process, as a Protocol: the settings, the
clock, the database sessions and the write scope, and a way to start background work.

`app.runtime.Runtime` satisfies it (and the wider contexts domains declare on top of it,
such as broadcast.context.Sending) structurally: no domain imports the application, and
the composition root (app/main.py) is where mypy checks that the runtime fits them all."""

from __future__ import annotations

from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import Clock
from core.settings import Settings


class Context(Protocol):
    settings: Settings
    clock: Clock
    sessions: async_sessionmaker[AsyncSession]

    def writing(self) -> AbstractAsyncContextManager[AsyncSession]:
        """The write scope: every write goes through it (core/writes.py)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None: ...
