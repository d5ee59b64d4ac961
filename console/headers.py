"""Security headers on the console's pages.

The console runs only its own script files (no inline script, no script from elsewhere),
so even an injected string cannot run as code; nobody may frame it (clickjacking a duty
officer into sending). Inline styles stay allowed: the printable monthly report carries
its own, and style cannot act."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "media-src 'self' blob:",  # a recording made in the browser, played back
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class ConsoleHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/console"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of the console on this site, nothing else
    (`?next=javascript:…` ran a link's script on the real console; `?next=//elsewhere`
    or `http://…` sent the officer to another site)."""
    if (
        not value
        or not value.startswith("/console")
        or value.startswith("//")
        or "\\" in value
        or "/.." in value
        or any(ord(c) < 0x20 for c in value)
    ):
        return "/console"
    rest = value[len("/console") :]
    return value if rest[:1] in ("", "/", "?", "#") else "/console"
