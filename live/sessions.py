"""The live sessions this process is carrying, in memory: their audio, the officer's
connection and the clusters listening. A session lives in the replica that started it
(its audio path is a process of its own); the database has its record (live/models.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime

from core.actors import Actor
from live.audio import Decoder, LiveAudio
from wire.protocol import CommandClass


@dataclass(eq=False)
class Session:
    broadcast_id: str
    title: str
    cls: CommandClass
    actor: Actor
    started_at: datetime
    bulletin_id: str
    cluster_ids: frozenset[int]
    audio: LiveAudio
    decoder: Decoder | None = None
    connections: int = 0
    # No officer connection since (monotonic); a session starts waiting for its first.
    disconnected_at: float = field(default_factory=time.monotonic)
    listeners: int = 0
    ending: str | None = None  # why it ends, once it does
    ended_at: datetime | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)  # the record is written
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one officer connection at a time
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def elapsed_s(self) -> float:
        return self.audio.written_samples / 48_000


class LiveSessions:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def get(self, broadcast_id: str) -> Session | None:
        return self._sessions.get(broadcast_id)

    def add(self, session: Session) -> None:
        self._sessions[session.broadcast_id] = session

    def discard(self, broadcast_id: str) -> None:
        self._sessions.pop(broadcast_id, None)

    def carrying(self) -> list[Session]:
        """Sessions still on air (not ending)."""
        return [s for s in self._sessions.values() if s.ending is None]

    def all(self) -> list[Session]:
        return list(self._sessions.values())
