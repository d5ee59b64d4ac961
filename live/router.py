"""Live voice over HTTP: go live, read the session, end it; the officer's audio over a
WebSocket (the session cookie for the console, a bearer token for the CLI)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect, status

from accounts.identify import signed_in_as
from core import actors
from core.actors import Actor
from core.errors import AppError
from core.policy import Action
from live import service
from live.schemas import LiveRead, LiveStart
from live.service import Live
from web.deps import SESSION_COOKIE, ActorDep, get_runtime
from web.guard import allow
from web.targets import From

router = APIRouter(prefix="/api/v1/live", tags=["live"])
LiveDep = Annotated[Live, Depends(get_runtime)]
# WebSocket close codes (4000-4999 are the application's): not signed in, not yours,
# no such session on this server.
CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND = 4401, 4403, 4404


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model_by_alias=True,
    dependencies=[allow(Action.SEND, From.BODY_TARGETS)],
)
async def go_live(data: LiveStart, runtime: LiveDep, actor: ActorDep) -> LiveRead:
    """Go live: a broadcast to the targets whose audio is the officer's voice, sent to
    `audio_path` (WebSocket, WebM/Opus chunks; the text `end` finishes). Who may, at which
    class and where: the one authority check every airing path uses."""
    return await service.start(runtime, data, actor)


@router.get(
    "/{broadcast_id}",
    response_model_by_alias=True,
    dependencies=[allow(Action.READ, From.BROADCAST)],
)
async def read_live(broadcast_id: str, runtime: LiveDep) -> LiveRead:
    """The session: on air or how it ended, the officer's link, the clusters listening,
    what was recorded."""
    return await service.read(runtime, broadcast_id)


@router.post(
    "/{broadcast_id}/end",
    response_model_by_alias=True,
    dependencies=[allow(Action.READ, From.BROADCAST)],
)
async def end_live(broadcast_id: str, runtime: LiveDep, actor: ActorDep) -> LiveRead:
    """Finish: what was said plays out, then every cluster answers `played`. The officer,
    or whoever may stop the broadcast (to cut it off at once, cancel the broadcast)."""
    await service.finish(runtime, broadcast_id, actor)
    return await service.read(runtime, broadcast_id)


class _Chunks:
    """The officer's WebSocket as a ChunkSource: binary messages, then None on "end"; it
    stops when the session ends otherwise (a cancel from another console)."""

    def __init__(self, websocket: WebSocket, ended: asyncio.Event) -> None:
        self._ws = websocket
        self._ended = ended

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes | None:
        receiving = asyncio.ensure_future(self._ws.receive())
        ending = asyncio.ensure_future(self._ended.wait())
        await asyncio.wait({receiving, ending}, return_when=asyncio.FIRST_COMPLETED)
        ending.cancel()
        if not receiving.done():
            receiving.cancel()
            raise StopAsyncIteration
        try:
            message = receiving.result()
        except WebSocketDisconnect:
            raise StopAsyncIteration from None
        if message["type"] == "websocket.disconnect":
            raise StopAsyncIteration
        if message.get("bytes") is not None:
            data: bytes = message["bytes"]
            return data
        if (message.get("text") or "").strip() == "end":
            return None
        return b""


async def _who(websocket: WebSocket, runtime: Live) -> Actor | None:
    """As web.deps.get_actor: a bearer token, else the session cookie; outside production
    with neither, the built-in administrator."""
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    raw = value.strip() if scheme.lower() == "bearer" else None
    raw = raw or websocket.cookies.get(SESSION_COOKIE)
    if raw:
        return await signed_in_as(runtime, raw)
    production = runtime.settings.environment == "production"
    if production:
        return None
    return actors.from_headers(None, None, None, production=False)


@router.websocket("/{broadcast_id}/audio")
async def officer_audio(websocket: WebSocket, broadcast_id: str) -> None:
    """The officer's microphone: WebM/Opus as MediaRecorder (or ffmpeg) makes it, one
    binary message per chunk; a new connection after a drop starts a new WebM stream."""
    runtime: Live = websocket.app.state.runtime
    actor = await _who(websocket, runtime)
    if actor is None:
        await websocket.close(CLOSE_UNAUTHENTICATED, "sign in first")
        return
    live = runtime.live.get(broadcast_id)
    if live is None:
        await websocket.close(CLOSE_NOT_FOUND, "no such live session on this server")
        return
    if actor.name != live.actor.name:
        await websocket.close(CLOSE_FORBIDDEN, "this live session is someone else's")
        return
    await websocket.accept()
    try:
        await service.speak(runtime, live, actor, _Chunks(websocket, live.done))
    except AppError as exc:
        await websocket.close(CLOSE_FORBIDDEN, str(exc)[:120])
        return
    if live.ending is not None:  # finished, cancelled, or lost: the officer is told how
        await live.done.wait()
        read = await service.read(runtime, broadcast_id)
        try:
            await websocket.send_text(read.model_dump_json(by_alias=True))
            await websocket.close()
        except (WebSocketDisconnect, RuntimeError):
            pass
