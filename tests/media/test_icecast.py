"""The test Icecast relay: a real icecast2 fed by a real ffmpeg, read over raw sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import pytest

from devstack.icecast import IcecastServer, Protocol, StreamSource, _stop_group, http_status
from tests.support import eventually

# MPEG-1 Layer III: kbit/s by bitrate index, Hz by sample-rate index.
MP3_BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MP3_SAMPLE_RATES = (44100, 48000, 32000)
READ_TIMEOUT_S = 5.0


async def open_listener(
    server: IcecastServer, mount: str
) -> tuple[int, dict[str, str], asyncio.StreamReader, asyncio.StreamWriter]:
    """GET ``mount`` over HTTP/1.0; the status, the headers and the open stream."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET {mount} HTTP/1.0\r\nHost: {server.host}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, reader, writer


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def read_at_least(reader: asyncio.StreamReader, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await reader.read(65536)
        assert chunk, f"the stream ended after {len(data)} bytes"
        data += chunk
    return data


async def read_to_eof(reader: asyncio.StreamReader) -> int:
    total = 0
    while chunk := await reader.read(65536):
        total += len(chunk)
    return total


def mp3_frame_length(data: bytes, at: int) -> int | None:
    """Length of the MPEG-1 Layer III frame whose header is at ``at``, None if none is."""
    if at + 4 > len(data):
        return None
    b1, b2 = data[at + 1], data[at + 2]
    if data[at] != 0xFF or b1 & 0xFE != 0xFA:  # 11-bit sync, MPEG-1, Layer III
        return None
    bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if bitrate_index in (0, 15) or rate_index == 3:
        return None
    return 144_000 * MP3_BITRATES[bitrate_index] // MP3_SAMPLE_RATES[rate_index] + padding


def first_mp3_frame(data: bytes, within: int = 2048) -> int | None:
    """Offset of the first of three back-to-back valid frames starting in ``within`` bytes."""
    for start in range(min(within, len(data))):
        at = start
        for _ in range(3):
            length = mp3_frame_length(data, at)
            if length is None:
                break
            at += length
        else:
            return start
    return None


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


@pytest.mark.parametrize("protocol", ["icecast", "http"])
async def test_listener_receives_mp3(icecast: IcecastServer, protocol: Protocol) -> None:
    source = StreamSource(icecast, f"/tone-{protocol}.mp3", protocol=protocol)
    await source.start()
    assert source.url == f"{icecast.url}/tone-{protocol}.mp3"
    try:
        status, headers, reader, writer = await open_listener(icecast, source.mount)
        try:
            assert status == 200
            assert headers["content-type"] == "audio/mpeg"
            data = await asyncio.wait_for(read_at_least(reader, 4096 + 1), READ_TIMEOUT_S)
        finally:
            await close(writer)
    finally:
        await source.stop()
    # A listener who joins early gets the stream from its start (ffmpeg's ID3v2 tag, then
    # frames); a later one gets the burst, which Icecast cuts at no frame boundary. Either
    # way, a chain of well-formed frames begins within the first couple of KiB.
    start = first_mp3_frame(data)
    assert start is not None, f"no MP3 frames in {data[:64].hex()}"
    # 64 kbit/s mono at 44.1 kHz: 208 or 209 bytes a frame.
    assert mp3_frame_length(data, start) in (208, 209)


async def test_listener_sees_the_stream_end_when_the_source_dies(
    icecast: IcecastServer,
) -> None:
    source = await StreamSource(icecast, "/dies.mp3").start()
    assert source.process is not None
    ffmpeg_pid = source.process.pid
    status, _, reader, writer = await open_listener(icecast, source.mount)
    try:
        assert status == 200
        await asyncio.wait_for(read_at_least(reader, 1024), READ_TIMEOUT_S)
        await source.stop()
        assert_gone(ffmpeg_pid)
        # The server closes the listener: EOF, within a bound, not after a sleep.
        await asyncio.wait_for(read_to_eof(reader), READ_TIMEOUT_S)
        assert reader.at_eof()
    finally:
        await close(writer)
    # Icecast drops the listeners before it unlists the mount.
    await eventually(
        lambda: http_status(icecast.host, icecast.port, source.mount),
        lambda status: status == 404,
        timeout=5,
        what=f"{source.mount} to be unlisted after its source died",
    )


async def test_unknown_mount_is_404(icecast: IcecastServer) -> None:
    assert await http_status(icecast.host, icecast.port, "/nothing-here.mp3") == 404
    status, _, _, writer = await open_listener(icecast, "/nothing-here.mp3")
    await close(writer)
    assert status == 404


async def test_a_refused_source_fails_with_ffmpeg_stderr(
    icecast: IcecastServer, tmp_path: Path
) -> None:
    # Same server, wrong source password (the object is never started: the source only
    # takes the address and the password from it).
    impostor = IcecastServer(tmp_path, port=icecast.port, source_password="wrong")
    source = StreamSource(impostor, "/refused.mp3")
    with pytest.raises(RuntimeError, match="ffmpeg exited") as failure:
        await source.start()
    assert "401" in str(failure.value) or "Unauthorized" in str(failure.value)
    assert source.process is None


async def test_stop_leaves_no_process(tmp_path: Path) -> None:
    server = await IcecastServer(tmp_path).start()
    assert server.process is not None
    pid = server.process.pid
    await server.stop()
    await server.stop()  # twice is harmless
    assert_gone(pid)
    assert (tmp_path / "log" / "error.log").exists()


async def test_a_port_in_use_is_refused(icecast: IcecastServer, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="already in use"):
        await IcecastServer(tmp_path / "second", port=icecast.port).start()


async def test_a_server_that_cannot_bind_fails_with_its_output(tmp_path: Path) -> None:
    # Bound but not listening: nothing answers there, yet icecast2 cannot bind it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        server = IcecastServer(tmp_path, port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="exited") as failure:
            await server.start()
    assert "Could not create listener socket" in str(failure.value)
    assert server.process is None


async def test_a_process_already_reaped_is_not_signalled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its pid may be another process's by now (pids wrap at 32,768 and the suite starts
    about 25,000 processes): a group signal after the reap is the likeliest cause of
    another test's Icecast dying at once in CI."""
    process = await asyncio.create_subprocess_exec("true", start_new_session=True)
    await process.wait()
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "killpg", lambda pid, sig: sent.append((pid, sig)))
    await _stop_group(process, signal.SIGTERM, 1.0)
    assert sent == []
