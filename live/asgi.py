"""GET /live/{broadcast_id}: a live session's stream to the clusters, as a bare ASGI app.

Checked like media (wire.media_auth, docs/protocol.md 4.2 and 4.4.1): the grant in the
command's URL is bound to the session and the command's target until its expiry, and the
device adds its proof; no database. Each listener starts at the live edge, on an MP3 frame
boundary, told the stream's byte offset (`X-Live-Offset`) and rate (`X-Live-Byte-Rate`)
so it knows the audio position it plays. The body is chunked (HTTP/1.1): its terminating
chunk is the session's clean end, which the device answers `played`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from live.audio import BYTE_RATE
from live.sessions import LiveSessions
from wire import media_auth

log = logging.getLogger(__name__)


class LiveStreamApp:
    def __init__(
        self, sessions: Callable[[], LiveSessions], signing_key: Callable[[], bytes]
    ) -> None:
        self._sessions = sessions
        self._signing_key = signing_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        broadcast_id = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        query = scope.get("query_string", b"").decode("latin-1")
        resource = media_auth.live_resource(broadcast_id)
        refusal = media_auth.verify(self._signing_key(), resource, query, time.time())
        if refusal is not None:
            log.info("live %s refused: %s", broadcast_id[:12], refusal.reason)
            await _refuse(403, f"refused: {refusal.reason}", broadcast_id)(scope, receive, send)
            return
        live = self._sessions().get(broadcast_id)
        if live is None or live.audio.ended.is_set():
            await _refuse(410, "the live session has ended", broadcast_id)(scope, receive, send)
            return
        audio = live.audio
        offset = audio.byte_offset
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"audio/mpeg"),
                    (b"cache-control", b"no-store"),
                    (b"x-live-offset", str(offset).encode()),
                    (b"x-live-byte-rate", str(BYTE_RATE).encode()),
                ],
            }
        )
        gone = asyncio.ensure_future(_disconnected(receive))
        live.listeners += 1
        try:
            while not gone.done():
                offset, data = await audio.read_from(offset)
                if not data:
                    break
                await send({"type": "http.response.body", "body": data, "more_body": True})
                offset += len(data)
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            live.listeners -= 1
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _refuse(code: int, message: str, broadcast_id: str) -> JSONResponse:
    return JSONResponse({"error": message, "detail": {"broadcast": broadcast_id}}, status_code=code)
