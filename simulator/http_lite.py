"""A one-request HTTP/1.1 GET on asyncio streams, one connection per download.

A real cluster opens its own connection to fetch media. httpx's shared pool re-scans every
queued request on each assignment, which turns 1,600 simultaneous downloads from one
process into quadratic CPU; this costs one socket and a few kilobytes per download.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024


class HttpLiteError(Exception):
    pass


def _request(url: str, version: str, extra_headers: str) -> tuple[str, int, bytes]:
    """(host, port, request bytes) of a GET for an http:// or https:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpLiteError(f"unsupported URL {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} {version}\r\nHost: {parts.hostname}:{port}\r\n"
        f"User-Agent: loa-simulator\r\n{extra_headers}\r\n"
    )
    return parts.hostname, port, request.encode()


def _tls_for(url: str, tls: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """https: the given context (a province's own CA), or the system's trust store."""
    if not url.startswith("https://"):
        return None
    return tls or ssl.create_default_context()


async def get(
    url: str, *, timeout: float = 30.0, tls: ssl.SSLContext | None = None
) -> tuple[int, bytes]:
    """(status, body) of a GET; raises HttpLiteError on a broken or oversized response."""
    host, port, request = _request(url, "HTTP/1.1", "Connection: close\r\n")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=_tls_for(url, tls))
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEADER_BYTES:
                raise HttpLiteError("response headers too large")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            headers = {}
            for line in header_lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = await _read_chunked(reader)
            elif "content-length" in headers:
                length = int(headers["content-length"])
                if length > MAX_BODY_BYTES:
                    raise HttpLiteError("response body too large")
                body = await reader.readexactly(length)
            else:
                body = await reader.read(MAX_BODY_BYTES)
            return status, body
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise HttpLiteError(f"malformed response: {exc.__class__.__name__}") from None
        finally:
            writer.close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
        if len(body) > MAX_BODY_BYTES:
            raise HttpLiteError("response body too large")


async def open_stream(
    url: str, *, timeout: float = 10.0
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a live stream (an Icecast mount) and read past the response headers; the
    caller reads the body for as long as it relays, and closes the writer."""
    status, _, reader, writer = await _open(url, "HTTP/1.0", "Icy-MetaData: 0\r\n", timeout)
    return status, reader, writer


async def open_live(
    url: str, *, timeout: float = 10.0
) -> tuple[int, dict[str, str], asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a live voice stream (docs/protocol.md 4.4.1) over HTTP/1.1: the body is
    chunked, so its terminating chunk tells a clean end (the officer finished) from a
    connection that died. (status, headers with lower-case names, reader, writer)."""
    return await _open(url, "HTTP/1.1", "Connection: close\r\n", timeout)


async def _open(
    url: str, version: str, extra: str, timeout: float
) -> tuple[int, dict[str, str], asyncio.StreamReader, asyncio.StreamWriter]:
    """GET `url` and read past the response headers: (status, headers, reader, writer)."""
    host, port, request = _request(url, version, extra)
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            writer.close()
            raise HttpLiteError("malformed stream response") from None
        except BaseException:
            writer.close()
            raise
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers, reader, writer


async def read_chunk(reader: asyncio.StreamReader) -> bytes | None:
    """The next chunk of a chunked body; None at its terminating chunk (a clean end).
    Raises HttpLiteError if the connection ends without one."""
    try:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            return None
        data = await reader.readexactly(size)
        await reader.readexactly(2)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        raise HttpLiteError("stream cut off") from None
    return data
