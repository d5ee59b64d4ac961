"""Small media kept in memory: an emergency clip is fetched by every cluster at once."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path

HOT_CACHE_BYTES = 64 * 1024 * 1024  # a few dozen bulletins
HOT_FILE_MAX_BYTES = 8 * 1024 * 1024  # larger files stream from disk


class HotMediaCache:
    """LRU of file contents by sha256 (content-addressed, so never stale)."""

    def __init__(
        self, max_bytes: int = HOT_CACHE_BYTES, max_file_bytes: int = HOT_FILE_MAX_BYTES
    ) -> None:
        self._max_bytes = max_bytes
        self._max_file_bytes = max_file_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._loading: dict[str, asyncio.Future[bytes | None]] = {}

    async def get(self, sha256: str, path: Path) -> bytes | None:
        """The bytes if the file is small enough to hold; None means stream it from disk."""
        if (data := self._items.get(sha256)) is not None:
            self._items.move_to_end(sha256)
            return data
        if sha256 in self._loading:  # a thousand requests at once read the disk once
            return await self._loading[sha256]
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._loading[sha256] = future
        try:
            data = await asyncio.to_thread(self._read, path)
            if data is not None:
                self._put(sha256, data)
            future.set_result(data)
            return data
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here; waiters get it too
            raise
        finally:
            del self._loading[sha256]

    def _read(self, path: Path) -> bytes | None:
        if path.stat().st_size > self._max_file_bytes:
            return None
        return path.read_bytes()

    def _put(self, sha256: str, data: bytes) -> None:
        self._items[sha256] = data
        self._size += len(data)
        while self._size > self._max_bytes and self._items:
            _, evicted = self._items.popitem(last=False)
            self._size -= len(evicted)
