"""The lean client's reader (wire/mqtt_lite.py) takes whatever one socket read delivers:
packets cut anywhere, or hundreds in one read, are each handled once, in order, and each
QoS 1 message is answered with its PUBACK."""

from __future__ import annotations

import asyncio
import struct

import pytest

from wire import mqtt_lite
from wire.mqtt_lite import LiteClient


def _publish(topic: str, payload: bytes, pid: int) -> bytes:
    body = mqtt_lite._str(topic) + struct.pack("!H", pid) + mqtt_lite._props(b"") + payload
    return mqtt_lite._packet(mqtt_lite.PUBLISH, 0x02, body)


async def _serve(chunks: list[bytes], pubacks: asyncio.Queue[int]) -> asyncio.Server:
    """A broker that answers CONNECT, then writes `chunks` one read at a time and records
    the PUBACKs it gets back."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await LiteClient._read_packet(reader)  # CONNECT
        writer.write(mqtt_lite._packet(mqtt_lite.CONNACK, 0, b"\x00\x00" + mqtt_lite._props(b"")))
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)  # the other side may read it alone
        try:
            while True:
                header, data = await LiteClient._read_packet(reader)
                if header >> 4 == mqtt_lite.PUBACK:
                    await pubacks.put(struct.unpack("!H", data)[0])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(session, "127.0.0.1", 0)


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """`data` in pieces of these sizes, cycling."""
    out, pos, k = [], 0, 0
    while pos < len(data):
        out.append(data[pos : pos + sizes[k % len(sizes)]])
        pos += sizes[k % len(sizes)]
        k += 1
    return out


@pytest.mark.parametrize(
    ("sizes", "count"),
    [([1], 20), ([3, 7, 2, 300], 200), ([10_000_000], 200)],
    ids=["a byte a write", "cut anywhere", "all in one write"],
)
async def test_every_message_once_in_order_and_acknowledged(sizes: list[int], count: int) -> None:
    # Lengths of one, two and three bytes (a body past 127 bytes, past 16 KB).
    messages = [
        (f"bc/v1/cluster/c{n}/ack", bytes([n % 256]) * (20_000 if n == 5 else n * 37 % 400))
        for n in range(count)
    ]
    if sizes == [1]:
        messages = [(t, p[:150]) for t, p in messages]
    stream = b"".join(_publish(t, p, n + 1) for n, (t, p) in enumerate(messages))
    stream += bytes([mqtt_lite.PINGRESP << 4, 0])  # no body: taken, ignored
    pubacks: asyncio.Queue[int] = asyncio.Queue()
    server = await _serve(_cut(stream, sizes), pubacks)
    port = server.sockets[0].getsockname()[1]
    heard: list[tuple[str, bytes]] = []
    client = LiteClient("reader-test", lambda topic, payload: heard.append((topic, payload)))
    try:
        await client.connect("127.0.0.1", port)
        acked = [await asyncio.wait_for(pubacks.get(), 10) for _ in messages]
    finally:
        await client.disconnect()
        server.close()
        await server.wait_closed()
    assert heard == messages
    assert acked == list(range(1, len(messages) + 1))


async def test_a_disconnect_from_the_broker_ends_the_connection() -> None:
    stream = _publish("bc/v1/cluster/c1/ack", b"{}", 1) + bytes([mqtt_lite.DISCONNECT << 4, 0])
    stream += _publish("bc/v1/cluster/c2/ack", b"{}", 2)  # after the goodbye: not read
    server = await _serve([stream], asyncio.Queue())
    port = server.sockets[0].getsockname()[1]
    heard: list[str] = []
    client = LiteClient("reader-test", lambda topic, _payload: heard.append(topic))
    try:
        await client.connect("127.0.0.1", port)
        await asyncio.wait_for(client.closed.wait(), 5)
    finally:
        client.drop()
        server.close()
        await server.wait_closed()
    assert heard == ["bc/v1/cluster/c1/ack"]
