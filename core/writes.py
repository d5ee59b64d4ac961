"""The one write rule: every database write happens inside a write scope, which takes the
process's write lock and a session together, commits on success and rolls back on error.
Services flush, never commit; the flow (a route, a job, a batch, a command) opens the scope.

Sessions from `core.database.create_session_maker` refuse a write outside a scope (a flush
with changes, or an INSERT, UPDATE or DELETE statement) with `WriteOutsideScope`, at the
line that writes, on both backends: a forgotten scope fails the first test that takes the
path, where on SQLite it had failed only when a background writer happened to run between
the read and the write (a CSV import answered 500)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

WRITING = "writing"  # Session.info key: set by the write scope, read by the guards below
RULE = "database writes go through a write scope (`async with ctx.writing() as session`)"

# What a flow is handed to write: a new write scope per call (Runtime.writing).
type Writing = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class WriteOutsideScope(RuntimeError):
    """A write through a session that no write scope opened."""


class NestedWriteScope(RuntimeError):
    """A write scope opened by a task that already holds one: it would wait for itself."""


class WriteLock(asyncio.Lock):
    """Within a process, database writers take turns here: an ack batch never overwrites a
    cancel it did not see, and SQLite's single writer is never contended. PostgreSQL adds
    row locks (taken in id order) on top, for several processes. It knows its holder, so a
    nested scope fails at once instead of hanging."""

    holder: asyncio.Task[Any] | None = None


class GuardedSession(Session):
    """The sessions the runtime makes: they refuse writes outside a write scope."""


@event.listens_for(GuardedSession, "before_flush")
def _refuse_unscoped_flush(session: Session, _flush: UOWTransaction, _objects: Any) -> None:
    if session.info.get(WRITING):
        return
    changed = any(session.is_modified(obj) for obj in session.dirty)
    if session.new or session.deleted or changed:
        raise WriteOutsideScope(f"a flush with changes outside a write scope: {RULE}")


@event.listens_for(GuardedSession, "do_orm_execute")
def _refuse_unscoped_statement(state: ORMExecuteState) -> None:
    writes = state.is_insert or state.is_update or state.is_delete
    if writes and not state.session.info.get(WRITING):
        raise WriteOutsideScope(f"{type(state.statement).__name__} outside a write scope: {RULE}")


@asynccontextmanager
async def write_scope(
    sessions: async_sessionmaker[AsyncSession], lock: WriteLock
) -> AsyncIterator[AsyncSession]:
    """The write lock, then one session that may write: committed on success, rolled back
    on error, the lock released either way."""
    task = asyncio.current_task()
    if task is not None and lock.holder is task:
        raise NestedWriteScope("this task already holds the write scope; write through it")
    async with lock:
        lock.holder = task
        try:
            async with sessions() as session:
                session.info[WRITING] = True
                try:
                    yield session
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
        finally:
            lock.holder = None


def writing_for(sessions: async_sessionmaker[AsyncSession]) -> Writing:
    """The write scope of a process with no runtime (a command-line action): its own lock,
    the same rule."""
    lock = WriteLock()
    return lambda: write_scope(sessions, lock)
