"""GET /media/{sha256}: the bytes clusters download, as a bare ASGI app.

Every cluster of a province fetches the same clip within a second of an emergency. Going
through FastAPI's routing, dependency injection and exception middleware costs about a
millisecond a request; this path costs a dictionary lookup and two ASGI messages. Range
requests and large files fall back to Starlette's FileResponse (Range, ETag, streaming).

Every request must carry a grant for that file and the requesting device's proof
(wire.media_auth); both are checked from the signing key alone, without a database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from media.cache import HotMediaCache
from wire import media_auth

log = logging.getLogger(__name__)

IMMUTABLE = b"public, max-age=31536000, immutable"  # content-addressed: bytes never change
HEX = frozenset("0123456789abcdef")


class MediaApp:
    def __init__(
        self,
        media_dir: Callable[[], Path],
        cache: Callable[[], HotMediaCache],
        signing_key: Callable[[], bytes],
    ) -> None:
        # Callables: the runtime (and so the directory and cache) is built in the lifespan.
        self._media_dir = media_dir
        self._cache = cache
        self._signing_key = signing_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        sha256 = scope["path"].rsplit("/", 1)[-1]
        if scope["method"] not in ("GET", "HEAD"):
            await Response(status_code=405, headers={"allow": "GET, HEAD"})(scope, receive, send)
            return
        if len(sha256) != 64 or not HEX.issuperset(sha256):
            await _not_found(sha256)(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        refusal = media_auth.verify(self._signing_key(), sha256, query, time.time())
        if refusal is not None:
            log.info("media %s refused: %s", sha256[:12], refusal.reason)
            await JSONResponse(
                {"error": f"refused: {refusal.reason}", "detail": {"media": sha256}},
                status_code=403,
            )(scope, receive, send)
            return
        etag = f'"{sha256}"'
        headers = dict(scope["headers"])
        if headers.get(b"if-none-match") == etag.encode():
            await Response(status_code=304, headers={"etag": etag})(scope, receive, send)
            return
        path = self._media_dir() / sha256[:2] / sha256
        if b"range" not in headers:
            try:
                data = await self._cache().get(sha256, path)
            except FileNotFoundError:
                await _not_found(sha256)(scope, receive, send)
                return
            if data is not None:
                await _send_bytes(send, data, etag, head=scope["method"] == "HEAD")
                return
        if not await asyncio.to_thread(path.is_file):
            await _not_found(sha256)(scope, receive, send)
            return
        response = FileResponse(
            path,
            media_type="application/octet-stream",
            headers={"etag": etag, "cache-control": IMMUTABLE.decode()},
        )
        await response(scope, receive, send)


def _not_found(sha256: str) -> Response:
    return JSONResponse(
        {"error": f"media {sha256!r} not found", "detail": {"media": sha256}}, status_code=404
    )


async def _send_bytes(send: Send, data: bytes, etag: str, *, head: bool) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(len(data)).encode()),
                (b"etag", etag.encode()),
                (b"cache-control", IMMUTABLE),
                (b"accept-ranges", b"bytes"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else data})


def standalone_app(media_dir: Path, signing_key: bytes) -> MediaApp:
    """The media path on its own: no database, no broker, any number of replicas."""
    cache = HotMediaCache()
    return MediaApp(lambda: media_dir, lambda: cache, lambda: signing_key)
