"""Just enough MQTT 5 on asyncio streams: simulated devices, and the control plane's
receive path.

A full client object per device (a paho client with its own buffers and locks) costs far
more memory and CPU than a cluster is worth in a load run; this one costs a few kilobytes.
For the control plane, paho (under aiomqtt) handles one packet per event-loop turn; this
client drains whatever the socket delivered in one go, which matters when a province
acknowledges at once, and writes what one turn of the event loop produced (the PUBACKs of
a burst, a cluster's PUBACK and its answers) in one system call.
It speaks CONNECT (with Last Will and session expiry), SUBSCRIBE, PUBLISH at QoS 0/1 with
PUBACK both ways, PINGREQ and DISCONNECT. Anything else the broker sends is ignored.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import struct
from collections.abc import Callable
from typing import Any

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
PROP_MESSAGE_EXPIRY = 0x02
PROP_SESSION_EXPIRY = 0x11
READ_CHUNK = 256 * 1024  # what one read takes from the socket: a burst of acks at once


class MqttLiteError(Exception):
    pass


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    data = s.encode()
    return struct.pack("!H", len(data)) + data


def _bin(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([(kind << 4) | flags]) + _varint(len(body)) + body


def _props(props: bytes) -> bytes:
    return _varint(len(props)) + props


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


MessageCallback = Callable[[str, bytes], None]


class LiteClient:
    def __init__(
        self,
        client_id: str,
        on_message: MessageCallback,
        *,
        keepalive: int = 60,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.client_id = client_id
        self._on_message = on_message
        self._keepalive = keepalive
        self._username = username
        self._password = password
        self._session_expiry_s = 0
        self.session_present = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._next_pid = 0
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._granted: dict[int, asyncio.Future[bytes]] = {}  # SUBACK reason codes
        self._out = bytearray()  # written at the end of this turn of the event loop
        self._tasks: list[asyncio.Task[None]] = []
        self.closed: asyncio.Event = asyncio.Event()
        self.closed.set()

    @property
    def connected(self) -> bool:
        return not self.closed.is_set()

    def _pid(self) -> int:
        self._next_pid = self._next_pid % 65535 + 1
        return self._next_pid

    async def connect(
        self,
        host: str,
        port: int,
        *,
        will: tuple[str, bytes, bool] | None = None,
        clean_start: bool = True,
        session_expiry_s: int = 0,
        local_addr: str | None = None,
        tls: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, local_addr=(local_addr, 0) if local_addr else None, ssl=tls
            ),
            timeout,
        )
        flags = 0x02 if clean_start else 0
        payload = _str(self.client_id)
        if will is not None:
            topic, message, retain = will
            flags |= 0x04 | (1 << 3) | (0x20 if retain else 0)  # will, QoS 1, retain
            payload += _props(b"") + _str(topic) + _bin(message)
        if self._username is not None:
            flags |= 0x80
            payload += _str(self._username)
        if self._password is not None:
            flags |= 0x40
            payload += _bin(self._password.encode())
        self._session_expiry_s = session_expiry_s
        props = b""
        if session_expiry_s:
            props = bytes([PROP_SESSION_EXPIRY]) + struct.pack("!I", session_expiry_s)
        body = _str("MQTT") + bytes([5, flags]) + struct.pack("!H", self._keepalive)
        writer.write(_packet(CONNECT, 0, body + _props(props) + payload))
        try:
            header, data = await asyncio.wait_for(self._read_packet(reader), timeout)
        except BaseException:
            writer.close()  # no CONNACK (timeout, reset): the socket is not left open
            raise
        kind = header >> 4
        if kind != CONNACK or len(data) < 2 or data[1] != 0:
            writer.close()
            code = data[1] if kind == CONNACK and len(data) > 1 else -1
            raise MqttLiteError(f"connection refused (reason code {code})")
        self.session_present = bool(data[0] & 0x01)  # the broker resumed a kept session
        self._reader, self._writer = reader, writer
        self.closed.clear()
        self._tasks = [
            asyncio.create_task(self._read_loop()),
            asyncio.create_task(self._ping_loop()),
        ]

    @staticmethod
    async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        header = (await reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        data = await reader.readexactly(length) if length else b""
        return header, data

    async def _read_loop(self) -> None:
        """Whatever the socket delivered, every whole packet in it handled in one go: three
        `readexactly` awaits per packet (header, length, body) were most of the reader's
        own cost when a province acknowledges at once (bench/ackpath.py)."""
        assert self._reader is not None
        reader = self._reader
        buffer = bytearray()
        try:
            while True:
                chunk = await reader.read(READ_CHUNK)
                if not chunk:
                    break
                buffer += chunk
                used = self._handle_packets(buffer)
                if used < 0:  # DISCONNECT
                    break
                del buffer[:used]
        except (ConnectionError, OSError, MqttLiteError):
            pass
        finally:
            self._lost()

    def _handle_packets(self, buffer: bytearray) -> int:
        """Handle the whole packets at the start of `buffer`; how many bytes they took, or
        -1 after a DISCONNECT."""
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            length, shift, at = 0, 0, pos + 1
            while True:
                if at >= end:
                    return pos  # the length is not all here yet
                byte = buffer[at]
                at += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise MqttLiteError("malformed remaining length")
            if end - at < length:
                return pos  # the body is not all here yet
            header = buffer[pos]
            data = bytes(buffer[at : at + length])
            pos = at + length
            if not self._handle_packet(header, data):
                return -1
        return pos

    def _handle_packet(self, header: int, data: bytes) -> bool:
        """One packet from the broker; False for a DISCONNECT."""
        kind = header >> 4
        if kind == PUBLISH:
            self._handle_publish(header & 0x0F, data)
        elif kind == PUBACK:
            future = self._pending.pop(struct.unpack_from("!H", data)[0], None)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind in (SUBACK, UNSUBACK):  # the same shape: id, properties, codes
            granted = self._granted.pop(struct.unpack_from("!H", data)[0], None)
            props_len, pos = _read_varint(data, 2)
            if granted is not None and not granted.done():
                granted.set_result(data[pos + props_len :])
        elif kind == DISCONNECT:
            return False
        return True

    def _handle_publish(self, flags: int, data: bytes) -> None:
        qos = (flags >> 1) & 0x03
        (topic_len,) = struct.unpack_from("!H", data)
        pos = 2 + topic_len
        topic = data[2:pos].decode()
        pid = 0
        if qos:
            (pid,) = struct.unpack_from("!H", data, pos)
            pos += 2
        props_len, pos = _read_varint(data, pos)
        payload = data[pos + props_len :]
        try:
            self._on_message(topic, payload)
        finally:
            if qos == 1 and self._writer is not None:
                self._send(_packet(PUBACK, 0, struct.pack("!H", pid)))

    def _send(self, data: bytes) -> None:
        """Queue bytes for the socket. A write is a system call; everything queued in one
        turn of the event loop goes out in one, in order."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out += data

    def _flush(self) -> None:
        if self._out and self._writer is not None:
            self._writer.write(bytes(self._out))
        self._out.clear()

    async def _ping_loop(self) -> None:
        while self._writer is not None:
            # Within the keep-alive, at a random point: a fleet that connected in the same
            # second (after a broker restart) must not ping in the same second for ever.
            await asyncio.sleep(self._keepalive * random.uniform(0.5, 0.75))
            if self._writer is not None:
                self._send(bytes([PINGREQ << 4, 0]))

    def _lost(self) -> None:
        self._out.clear()  # never to be written on the next connection
        if self._writer is not None:
            self._writer.close()
        self._writer = self._reader = None
        waiting: list[asyncio.Future[Any]] = [*self._pending.values(), *self._granted.values()]
        for future in waiting:
            if not future.done():
                future.set_exception(MqttLiteError("connection lost"))
        self._pending.clear()
        self._granted.clear()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.closed.set()

    async def subscribe(self, filters: list[str], qos: int = 1, timeout: float = 10.0) -> list[str]:
        """Subscribe; the filters the broker refused (reason code 0x80 or above: an access
        list that says no, a malformed filter)."""
        if self._writer is None:
            raise MqttLiteError("not connected")
        pid = self._pid()
        body = struct.pack("!H", pid) + _props(b"")
        for topic_filter in filters:
            body += _str(topic_filter) + bytes([qos])
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._granted[pid] = future
        self._send(_packet(SUBSCRIBE, 0x02, body))
        codes = await asyncio.wait_for(future, timeout)
        return [f for f, code in zip(filters, codes, strict=False) if code >= 0x80]

    async def unsubscribe(self, filters: list[str], timeout: float = 10.0) -> None:
        """Leave these filters; returns once the broker has answered (UNSUBACK)."""
        if self._writer is None:
            raise MqttLiteError("not connected")
        pid = self._pid()
        body = struct.pack("!H", pid) + _props(b"")
        for topic_filter in filters:
            body += _str(topic_filter)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._granted[pid] = future
        self._send(_packet(UNSUBSCRIBE, 0x02, body))
        await asyncio.wait_for(future, timeout)

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        expiry_s: int | None = None,
    ) -> asyncio.Future[None] | None:
        """Write a PUBLISH now; for QoS 1 return a future that the PUBACK resolves."""
        if self._writer is None:
            raise MqttLiteError("not connected")
        props = b""
        if expiry_s is not None:
            props = bytes([PROP_MESSAGE_EXPIRY]) + struct.pack("!I", expiry_s)
        body = _str(topic)
        future = None
        if qos:
            pid = self._pid()
            body += struct.pack("!H", pid)
            future = asyncio.get_running_loop().create_future()
            future.add_done_callback(_consume_exception)
            self._pending[pid] = future
        self._send(
            _packet(PUBLISH, (qos << 1) | (1 if retain else 0), body + _props(props) + payload)
        )
        return future

    async def disconnect(self) -> None:
        """A clean goodbye: the broker discards the Last Will, and the session (a session
        kept past the connection is for a dropped link, not for leaving)."""
        if self._writer is not None:
            self._flush()  # what was published before the goodbye
            if self._session_expiry_s:
                # Reason 0, then the Session Expiry Interval set to 0: end it now.
                props = bytes([PROP_SESSION_EXPIRY]) + struct.pack("!I", 0)
                self._writer.write(_packet(DISCONNECT, 0, b"\x00" + _props(props)))
            else:
                self._writer.write(bytes([DISCONNECT << 4, 0]))
            try:
                await self._writer.drain()
            except (ConnectionError, OSError):
                pass
        self._lost()

    def drop(self) -> None:
        """Vanish without a word, as a cluster whose 4G link dies: the broker sends the Will."""
        self._lost()


def _consume_exception(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
