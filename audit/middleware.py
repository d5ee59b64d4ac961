"""Every change made through the API, and every refused attempt, into the audit log.

Pure ASGI: for a request that changes something (any method but GET, HEAD, OPTIONS),
or any request refused for who is asking (401, 403, 423, 429), the answer is held until
its event is written; refusals of anonymous requests are tallied per address and window
instead (audit/tally.py). If the write fails the answer still goes out and the failure is logged:
an emergency must not wait on the audit log. The identity comes from
the request state the actor dependency filled in (none: "anonymous"); what was targeted
from the guard (`audit_detail`) and the created resource's `id` from the answer.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from audit.models import AuditOutcome
from audit.service import event

log = logging.getLogger(__name__)

READS = frozenset({"GET", "HEAD", "OPTIONS"})
DENIED = frozenset({401, 403, 423, 429})
MAX_HELD_BYTES = 256 * 1024  # answers larger than this are recorded without their id


def outcome_of(status: int) -> AuditOutcome:
    if status in DENIED:
        return AuditOutcome.DENIED
    if status >= 500:
        return AuditOutcome.FAILED
    if status >= 400:
        return AuditOutcome.REFUSED
    return AuditOutcome.OK


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(("/api/", "/console")):
            await self.app(scope, receive, send)
            return
        changing = scope["method"] not in READS
        start: Message | None = None
        held: list[bytes] = []
        passing = False

        async def capture(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                if not changing and message["status"] not in DENIED:
                    passing = True
                    await send(message)
                    return
                start = message
                return
            if message["type"] == "http.response.body":
                held.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                assert start is not None
                body = b"".join(held)
                await self._record(scope, int(start["status"]), body)
                await send(start)
                await send({"type": "http.response.body", "body": body})

        try:
            await self.app(scope, receive, capture)
        except Exception:
            await self._record(scope, 500, b"")
            raise

    async def _record(self, scope: Scope, status: int, body: bytes) -> None:
        runtime = scope["app"].state.runtime
        state: dict[str, Any] = scope.get("state") or {}
        actor = state.get("actor")
        answer = _json(body) if len(body) <= MAX_HELD_BYTES else {}
        detail: dict[str, Any] = dict(state.get("audit_detail") or {})
        if status >= 400 and isinstance(answer.get("error"), str):
            detail["error"] = answer["error"][:300]
        target = scope["path"]
        if state.get("audit_target"):
            target = f"{target} {state['audit_target']}"
        if isinstance(answer.get("id"), (str, int)) and status < 300:
            target = f"{target} -> {answer['id']}"
        client = scope.get("client")
        row = event(
            at=runtime.clock.now(),
            actor=actor.name if actor else "anonymous",
            role=actor.role.value if actor else "",
            area=actor.area if actor else None,
            address=client[0] if client else "",
            action=f"{scope['method']} {_route(scope)}",
            target=target,
            outcome=outcome_of(status),
            status=status,
            detail=detail,
        )
        if actor is None and status in DENIED and not _sign_in_failure(scope, status):
            # Anonymous refusals are tallied per address and window (audit/tally.py): a
            # flood writes a row a minute, and never takes the lock that sending takes.
            runtime.refusals.add(
                address=row.address,
                action=row.action,
                status=status,
                at=row.at,
                error=str(detail.get("error", "")),
            )
            return
        try:
            async with runtime.writing() as session:
                session.add(row)
        except Exception:  # the answer still goes out; the loss is loud
            log.exception("audit event not written: %s %s", row.action, row.target)


def _sign_in_failure(scope: Scope, status: int) -> bool:
    """A wrong password is recorded on its own (who tried which name, from where); the
    per-address budget before it bounds how many there can be."""
    return status == 401 and scope["path"] == "/api/v1/auth/login"


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", None) or scope["path"])


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
