"""CAP between systems: signatures checked, a broadcast exported as CAP and read back,
alerts taken from a watched feed once each, and delivery outcomes posted upstream as
CAP Acks referencing the alerts."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cap.message import read
from cap.parsing import parse
from simulator.fleet import Fleet
from tests.broadcast.helpers import send
from tests.cap.helpers import SENDER, InfoSpec, Signer, alert, key_of, xml
from tests.cap.test_cap_in import COMMUNE, DISTRICT, NEIGHBOUR, post_cap
from tests.factories import small_province
from tests.support import Stack, counts, eventually


async def test_signed_alerts_are_checked_against_the_trusted_certificates(
    stack_factory: Callable[..., Awaitable[Stack]], tmp_path: Path
) -> None:
    agency, stranger = Signer.make("nchmf.gov.vn"), Signer.make("mallory.example")
    stack = await stack_factory(
        cap_require_signature=True, cap_trusted_certs=[agency.cert_file(tmp_path, "nchmf")]
    )
    await small_province(stack)
    unsigned = await post_cap(stack, xml(alert("S-0", InfoSpec(geocodes=[COMMUNE]))))
    assert unsigned.status_code == 422 and "unsigned" in unsigned.json()["error"]
    forged = await post_cap(stack, stranger.sign(alert("S-1", InfoSpec(geocodes=[COMMUNE]))))
    assert forged.status_code == 422
    assert "does not verify with a trusted certificate" in forged.json()["error"]
    signed = agency.sign(alert("S-2", InfoSpec(geocodes=[COMMUNE])))
    altered = signed.replace(b"Extreme", b"Minor")  # changed after signing
    tampered = await post_cap(stack, altered)
    assert tampered.status_code == 422 and "does not verify" in tampered.json()["error"]
    genuine = await post_cap(stack, signed)
    assert genuine.status_code == 201, genuine.text
    assert genuine.json()["broadcast_id"] is not None
    refused = (await stack.client.get("/api/v1/cap?outcome=rejected")).json()
    assert refused["total"] == 3


async def test_a_broadcast_exported_as_cap_is_valid_and_reads_back_the_same(
    stack: Stack,
) -> None:
    await small_province(stack)
    original = await send(
        stack,
        title="Cháy rừng tại Bù Gia Mập",
        areas=[COMMUNE, NEIGHBOUR],
        text="Cháy rừng lan nhanh về phía khu dân cư. Người dân sơ tán theo hướng dẫn.",
        drill=True,
    )
    exported = await stack.client.get(f"/api/v1/broadcasts/{original['id']}/cap")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/cap+xml")
    message = read(parse(exported.content))  # valid against the OASIS schema
    assert (message.identifier, message.status, message.msg_type) == (
        original["id"],
        "Exercise",
        "Alert",
    )
    [info] = message.infos
    assert (info.urgency, info.severity, info.certainty) == ("Immediate", "Severe", "Observed")
    assert sorted(v for _, v in info.areas[0].geocodes) == sorted([COMMUNE, NEIGHBOUR])

    back = await post_cap(stack, exported.content)  # a neighbour reading it, here ourselves
    assert back.status_code == 201, back.text
    copy = await stack.broadcast(back.json()["broadcast_id"])
    assert (copy["class"], copy["drill"]) == ("emergency", True)
    assert sorted(copy["target_areas"]) == sorted(original["target_areas"])
    assert copy["title"] == original["title"]
    assert original["text"] in copy["text"]


@dataclass
class Upstream:
    """A national system's HTTP side: serves a feed of alert links and the alerts,
    and takes the Acks posted back."""

    files: dict[str, bytes] = field(default_factory=dict)
    acks: list[bytes] = field(default_factory=list)
    feed_reads: int = 0
    url: str = ""


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = state.files.get(self.path)
            if self.path == "/feed.atom":
                state.feed_reads += 1
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def do_POST(self) -> None:
            state.acks.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _atom(*links: str) -> bytes:
    entries = "".join(
        f"<entry><id>{link}</id><title>x</title><updated>2026-11-24T07:00:00Z</updated>"
        f'<link rel="alternate" type="application/cap+xml" href="{link}"/></entry>'
        for link in links
    )
    return (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>f</id>'
        f"<title>Cảnh báo</title><updated>2026-11-24T07:00:00Z</updated>{entries}</feed>"
    ).encode()


@pytest.fixture
async def fed_stack(
    stack_factory: Callable[..., Awaitable[Stack]], upstream: Upstream
) -> AsyncIterator[Stack]:
    yield await stack_factory(
        cap_feeds=[f"{upstream.url}/feed.atom"],
        cap_feed_interval_s=0.2,
        cap_ack_url=f"{upstream.url}/acks",
    )


async def test_a_feed_is_read_once_per_alert_and_outcomes_go_back_as_acks(
    fed_stack: Stack, upstream: Upstream, fleet_factory: Callable[..., Fleet]
) -> None:
    stack = fed_stack
    specs = (await small_province(stack)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    emergency = xml(alert("FEED-1", InfoSpec(geocodes=[COMMUNE])))
    advisory = xml(
        alert(
            "FEED-2",
            InfoSpec(urgency="Future", severity="Minor", certainty="Possible", geocodes=[DISTRICT]),
        )
    )
    upstream.files.update(
        {"/a/1.xml": emergency, "/a/2.xml": advisory, "/feed.atom": _atom("/a/1.xml", "a/2.xml")}
    )
    received = await eventually(
        lambda: _cap_messages(stack),
        lambda page: page["total"] == 2,
        what="both alerts of the feed received",
    )
    sources = sorted(m["source"] for m in received["items"])
    assert sources == [f"{upstream.url}/a/1.xml", f"{upstream.url}/a/2.xml"]
    # Read again and again: nothing new is stored or aired.
    reads = upstream.feed_reads
    await eventually(
        lambda: _feed_reads(upstream),
        lambda n: n >= reads + 3,
        what="the feed polled three more times",
    )
    assert (await _cap_messages(stack))["total"] == 2
    assert (await stack.client.get("/api/v1/broadcasts")).json()["total"] == 1

    aired = next(m for m in received["items"] if m["identifier"] == "FEED-1")
    await stack.wait_broadcast(aired["broadcast_id"], lambda b: counts(b, "played") == len(specs))
    acks = await eventually(
        lambda: _acks(upstream),
        lambda found: len(found) == 2,
        what="an Ack for each alert",
    )
    by_reference = {}
    for body in acks:
        ack = read(parse(body))  # valid CAP 1.2
        assert (ack.msg_type, ack.sender) == ("Ack", stack.settings.cap_sender)
        [reference] = ack.references
        by_reference[reference[1]] = ack
    assert ",".join(next(iter(by_reference["FEED-1"].references))) == key_of("FEED-1")
    assert by_reference["FEED-1"].note is not None
    assert (
        f"aired to {len(specs)} clusters: {len(specs)} confirmed, {len(specs)} played, 0 not"
        in (by_reference["FEED-1"].note)
    )
    assert "in the inbox of" in (by_reference["FEED-2"].note or "")
    # Upstream has each Ack once its POST arrived; the record notes it after the answer.
    stored = await eventually(
        lambda: _cap_messages(stack),
        lambda page: all(m["ack_sent_at"] is not None for m in page["items"]),
        what="each Ack recorded as sent",
    )
    assert SENDER in {m["sender"] for m in stored["items"]}


async def _cap_messages(stack: Stack) -> dict[str, Any]:
    data: dict[str, Any] = (await stack.client.get("/api/v1/cap?limit=100")).json()
    return data


async def _feed_reads(upstream: Upstream) -> int:
    return upstream.feed_reads  # counted by the upstream server's own thread


async def _acks(upstream: Upstream) -> list[bytes]:
    return list(upstream.acks)
