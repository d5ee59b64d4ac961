"""What a cluster holds of its schedule, and plays by itself when no command comes.

docs/protocol.md section 11: the control plane pushes the next hours of plays, retained.
At each item's start the device waits for the command that fires it; if its link is down,
or no command comes within LOCAL_FALLBACK_S, it plays the item from what it holds. Either
way an item plays once: a command for an item already played locally is answered
"played" without sound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from wire.protocol import MediaRef, ScheduleDoc, ScheduleItem

LOCAL_FALLBACK_S = 10.0  # online but no command by then: the control plane is down


class StoredSchedule:
    def __init__(
        self,
        *,
        connected: Callable[[], bool],
        play_locally: Callable[[ScheduleItem], Awaitable[None]],
        prefetch: Callable[[MediaRef], Awaitable[str | None]],
    ) -> None:
        self._connected = connected
        self._play_locally = play_locally
        self._prefetch = prefetch
        self.version = 0
        self.items: dict[str, ScheduleItem] = {}
        self.played: dict[str, datetime] = {}  # item id -> when it started, by either path
        self._commanded: dict[str, asyncio.Event] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}

    def accept(self, doc: ScheduleDoc, profile: str | None) -> bool:
        """Take a version higher than the one held; True if taken. A lower one is an old
        signed document replayed (it would bring back an ended item): refused, by the
        caller's note. The control plane's versions only grow (milliseconds of its clock,
        and above the cluster's last), a restored backup included."""
        if doc.version <= self.version:
            return False
        self.version = doc.version
        self.items = {item.id: item for item in doc.items}
        for item_id in [i for i in self._timers if i not in self.items]:
            self._timers.pop(item_id).cancel()
        now = datetime.now(UTC)
        for item in doc.items:
            # Only what is still to start: an item already under way is the command's to
            # play (it is re-sent while valid), never a late surprise from storage.
            if item.id in self._timers or item.id in self.played or item.starts_at <= now:
                continue
            self._timers[item.id] = asyncio.create_task(self._at_start(item, profile))
        return True

    def commanded(self, item_id: str) -> None:
        """A command for this item arrived: it plays by that path, not from here."""
        self._commanded.setdefault(item_id, asyncio.Event()).set()

    def started(self, item_id: str) -> None:
        self.played.setdefault(item_id, datetime.now(UTC))

    async def _at_start(self, item: ScheduleItem, profile: str | None) -> None:
        try:
            if item.media is not None:  # ready before the link can drop
                await self._prefetch(item.media.for_profile(profile))
            wait = (item.starts_at - datetime.now(UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            event = self._commanded.setdefault(item.id, asyncio.Event())
            if self._connected() and not event.is_set():
                try:
                    await asyncio.wait_for(event.wait(), LOCAL_FALLBACK_S)
                except TimeoutError:
                    pass
            if event.is_set() or item.id in self.played:
                return
            if datetime.now(UTC) < item.expires_at:
                self.started(item.id)
                await self._play_locally(item)
        finally:
            self._timers.pop(item.id, None)

    async def close(self) -> None:
        for task in list(self._timers.values()):
            task.cancel()
        self._timers.clear()
