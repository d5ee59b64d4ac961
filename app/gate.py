"""Who is asking, and how much, before a request's body is read (issue 19).

Sign-ins are counted per source address here too (accounts/throttle.py), before anything
else is done for them.

FastAPI reads and parses a body before any dependency runs, so the guard's sign-in check
came too late: an anonymous 96 MiB JSON body raised the API's memory by ~285 MiB, and an
anonymous 300 MiB upload was spooled to disk before the 401. This middleware, for every
request with a body under /api/:
- refuses a body larger than the route's limit (413), by its Content-Length at once, or
  by counting as it streams in;
- in production, answers 401 before reading anything when the request carries no
  credentials, or credentials that sign nobody in; the person found is kept on the
  request, so the endpoint's own dependency does not look them up again.

It also refuses the NUL character anywhere in an /api/ request's path, query or JSON
strings (422 naming the parameter or field): it is not text, PostgreSQL cannot store it
(`CharacterNotInRepertoireError`, a 500 before), and no name, title or message needs it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounts.identify import signed_in_as
from app.runtime import Runtime
from core.settings import Settings
from web.deps import SESSION_COOKIE

JSON_LIMIT_BYTES = 4 * 1024 * 1024  # a broadcast naming 100,000 clusters is ~1.5 MB
CAP_LIMIT_BYTES = 1024 * 1024  # a CAP message with its signature is kilobytes
CSV_LIMIT_BYTES = 32 * 1024 * 1024  # a province's register as CSV is a few megabytes
BODIES = frozenset({"POST", "PUT", "PATCH"})
SIGN_IN = "/api/v1/auth/login"
ANONYMOUS_ROUTES = frozenset({SIGN_IN})  # signing in needs no sign-in


class RequestGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        nul = _nul_in_address(scope)
        if nul is not None:
            await _refuse_field(send, nul)
            return
        if scope["method"] not in BODIES:
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        if path == SIGN_IN:
            # The per-address budget, answered here, before routing, parsing and any
            # database read: a flood of sign-ins from many addresses costs the event
            # loop as little as can be, so the duty officer's emergency stays quick.
            client = scope.get("client")
            address = client[0] if client else ""
            wait = runtime.sign_in_budget.take(address, runtime.clock.now().timestamp())
            if wait:
                await _answer(send, 429, "too many sign-ins from this address", retry_after_s=wait)
                return
        limit = _limit(path, runtime.settings)
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _answer(send, 413, f"the body is larger than {_size(limit)} for this route")
            return
        if runtime.settings.environment == "production" and path not in ANONYMOUS_ROUTES:
            if not await _identified(scope, headers, runtime):
                await _answer(send, 401, "sign in first (no valid token or session)")
                return
        seen = 0
        if headers.get("content-type", "").startswith("application/json"):
            body, complete = await _read_body(receive, limit)
            if not complete:
                await _answer(send, 413, f"the body is larger than {_size(limit)} for this route")
                return
            nul = _nul_in_json(body)
            if nul is not None:
                await _refuse_field(send, nul)
                return
            receive = _replay(body, receive)

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # a body that does not say its length, or lied about it
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, send)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole body, and whether it ended within the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True  # the client left: the app sees an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _nul_in_address(scope: Scope) -> str | None:
    """The parameter (or "path") that holds a NUL character."""
    if "\x00" in scope.get("path", ""):
        return "path"
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" not in query and "\x00" not in query:
        return None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return None


def _nul_in_json(body: bytes) -> str | None:
    """The dotted field of the first JSON string (or key) that holds a NUL character."""
    if b"\\u0000" not in body:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None  # malformed: the app's own parser says so
    return _find_nul(document, [])


def _find_nul(value: Any, at: list[str]) -> str | None:
    if isinstance(value, str):
        return (".".join(at) or "body") if "\x00" in value else None
    items: Any = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return ".".join(at) or "body"
        found = _find_nul(item, [*at, str(key)])
        if found is not None:
            return found
    return None


async def _refuse_field(send: Send, field: str) -> None:
    error = "the NUL character is not allowed in text"
    body = json.dumps({"error": f"{field}: {error}", "detail": [{"field": field, "error": error}]})
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


def _limit(path: str, settings: Settings) -> int:
    if path in ("/api/v1/media", "/api/v1/media/images"):
        return settings.max_upload_bytes
    if path == "/api/v1/firmware":
        return settings.firmware_max_bytes
    if path.endswith("/import"):
        return CSV_LIMIT_BYTES
    if path == "/api/v1/cap":
        return CAP_LIMIT_BYTES
    return JSON_LIMIT_BYTES


async def _identified(scope: Scope, headers: Headers, runtime: Runtime) -> bool:
    """A live token or session; kept on the request for the endpoint (web/deps.py)."""
    authorization = headers.get("authorization", "")
    raw = None
    if authorization.lower().startswith("bearer "):
        raw = authorization[7:].strip()
    else:
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                raw = value
    if raw is None:
        return bool(runtime.settings.auth_proxy_headers and headers.get("x-actor"))
    actor = await signed_in_as(runtime, raw)
    if actor is None:
        return False
    scope.setdefault("state", {})["identified"] = actor
    return True


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MiB"


async def _answer(
    send: Send, status: int, error: str, *, retry_after_s: float | None = None
) -> None:
    detail: dict[str, object] = {"status": status}
    headers = [(b"content-type", b"application/json")]
    if retry_after_s is not None:
        seconds = max(1, round(retry_after_s))
        detail["retry_after_s"] = seconds
        headers.append((b"retry-after", str(seconds).encode()))
    else:
        headers.append((b"connection", b"close"))  # the body was not read: do not reuse
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
