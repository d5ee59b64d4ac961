"""A real Icecast relay for tests, the demo and the conformance kit: an icecast2 server
and ffmpeg sources.

``IcecastServer`` writes a minimal icecast.xml into a directory and runs ``icecast2`` on a
free port of 127.0.0.1; ``StreamSource`` runs ffmpeg feeding a 440 Hz MP3 tone to one mount.
Both run their process in its own session (process group) and ``stop()`` signals the whole
group, so nothing outlives them.

icecast2 refuses to run as root unless the configuration tells it to drop privileges; as
root the server therefore switches to nobody:nogroup, and its log directory (which must be
writable by nobody and reachable through directories nobody may enter, which a pytest
``tmp_path`` is not) is a temporary directory under the system temp dir, copied back into
``directory / "log"`` by ``stop()``.

Standard library only: the readiness checks speak raw HTTP/1.0 over asyncio streams.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import IO, Literal
from xml.sax.saxutils import escape

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.05
WEBROOT = Path("/usr/share/icecast2/web")
ADMINROOT = Path("/usr/share/icecast2/admin")
UNPRIVILEGED_USER = "nobody"
UNPRIVILEGED_GROUP = "nogroup"

Protocol = Literal["icecast", "http"]


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (the usual small race applies)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<{path} unreadable: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


async def _stop_group(process: asyncio.subprocess.Process, sig: int, timeout: float) -> None:
    """Signal the process's whole group with ``sig``, escalate to SIGKILL after ``timeout``.

    The process was started with start_new_session=True, so its pid is its group id, but
    only while the process is ours: once it has been reaped its pid is free, and the suite
    starts about 25,000 processes a run on a machine whose pids wrap at 32,768, so a group
    signalled after that can be a stranger's. A group kill "for children left behind",
    sent after the reap, is the likeliest cause of a fresh Icecast of another test dying
    at once, with nothing in its log (CI, 2026-12-06); neither icecast2 nor ffmpeg leaves
    children, so nothing is signalled once the process is gone.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


class IcecastServer:
    """An icecast2 process configured for tests: 127.0.0.1, a free port, small burst."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        source_password: str | None = None,
        admin_password: str | None = None,
        burst_size: int = 16384,
    ) -> None:
        if shutil.which("icecast2") is None:
            raise RuntimeError("icecast2 is not installed (apt-get install icecast2)")
        self.directory = Path(directory)
        self.host = HOST
        self.port = port or free_port(HOST)
        self.source_password = source_password or secrets.token_hex(8)
        self.admin_password = admin_password or secrets.token_hex(8)
        self.burst_size = burst_size
        self.config_path = self.directory / "icecast.xml"
        self.output_path = self.directory / "icecast.out"
        self.log_dir = self.directory / "log"
        self._as_root = os.geteuid() == 0
        self._tmp_log_dir: Path | None = None
        self._output: IO[bytes] | None = None
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash: ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def error_log(self) -> Path:
        """Where icecast writes its error log right now (after stop(): the copy)."""
        return (self._tmp_log_dir or self.log_dir) / "error.log"

    def _config(self, log_dir: Path) -> str:
        security = "<chroot>0</chroot>"
        if self._as_root:
            security += (
                f"<changeowner><user>{UNPRIVILEGED_USER}</user>"
                f"<group>{UNPRIVILEGED_GROUP}</group></changeowner>"
            )
        return f"""<icecast>
    <location>test</location>
    <admin>test@localhost</admin>
    <hostname>{self.host}</hostname>
    <limits>
        <clients>100</clients>
        <sources>4</sources>
        <queue-size>524288</queue-size>
        <client-timeout>30</client-timeout>
        <header-timeout>15</header-timeout>
        <source-timeout>10</source-timeout>
        <burst-on-connect>1</burst-on-connect>
        <burst-size>{self.burst_size}</burst-size>
    </limits>
    <authentication>
        <source-password>{escape(self.source_password)}</source-password>
        <relay-password>{escape(self.source_password)}</relay-password>
        <admin-user>admin</admin-user>
        <admin-password>{escape(self.admin_password)}</admin-password>
    </authentication>
    <listen-socket>
        <port>{self.port}</port>
        <bind-address>{self.host}</bind-address>
    </listen-socket>
    <fileserve>1</fileserve>
    <paths>
        <basedir>/usr/share/icecast2</basedir>
        <logdir>{escape(str(log_dir))}</logdir>
        <webroot>{WEBROOT}</webroot>
        <adminroot>{ADMINROOT}</adminroot>
    </paths>
    <logging>
        <accesslog>access.log</accesslog>
        <errorlog>error.log</errorlog>
        <loglevel>2</loglevel>
        <logsize>10000</logsize>
    </logging>
    <security>{security}</security>
</icecast>
"""

    def _make_log_dir(self) -> Path:
        if not self._as_root:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            return self.log_dir
        # icecast opens its logs after switching to nobody, who cannot enter pytest's
        # 0700 tmp_path parents: use a world-reachable directory owned by nobody.
        path = Path(tempfile.mkdtemp(prefix="icecast-log-"))
        shutil.chown(path, UNPRIVILEGED_USER, UNPRIVILEGED_GROUP)
        path.chmod(0o755)
        self._tmp_log_dir = path
        return path

    def _describe_failure(self, reason: str) -> str:
        return (
            f"icecast2 {reason}\n--- {self.output_path} ---\n{_tail(self.output_path)}"
            f"\n--- {self.error_log} ---\n{_tail(self.error_log)}"
        )

    async def _answers(self) -> bool:
        """Whether this very server answers: a port that accepts TCP connections could be
        another process's (icecast2 exits, with status 0, when it cannot bind), but only
        ours knows the admin password."""
        if not await _port_open(self.host, self.port):
            return False
        try:
            status = await http_status(
                self.host, self.port, "/admin/stats", auth=("admin", self.admin_password)
            )
        except (OSError, TimeoutError, ValueError, IndexError):
            return False
        return status == 200

    async def start(self) -> IcecastServer:
        """Launch icecast2 and return once it accepts TCP connections and answers HTTP."""
        if self.process is not None:
            raise RuntimeError("icecast2 is already running")
        if await _port_open(self.host, self.port):
            raise RuntimeError(f"{self.host}:{self.port} is already in use")
        self.directory.mkdir(parents=True, exist_ok=True)
        log_dir = self._make_log_dir()
        self.config_path.write_text(self._config(log_dir))
        self._output = self.output_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            "icecast2",
            "-c",
            str(self.config_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._output,
            stderr=self._output,
            start_new_session=True,
        )
        try:
            failure = await self._wait_ready(self.process)
        except BaseException:  # cancelled: leave no icecast2 behind
            await self.stop()
            raise
        if failure is not None:
            await self.stop()
            raise RuntimeError(self._describe_failure(failure))
        return self

    async def _wait_ready(self, process: asyncio.subprocess.Process) -> str | None:
        """None once the server answers, else why it will not."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not await self._answers():
            if process.returncode is not None:
                # Even "Server startup failed" exits with status 0.
                return f"exited with status {process.returncode}"
            if time.monotonic() > deadline:
                return f"did not answer on {self.host}:{self.port} within {START_TIMEOUT_S}s"
            await asyncio.sleep(POLL_INTERVAL_S)
        return None

    async def stop(self) -> None:
        """Terminate icecast2 (SIGKILL after a timeout); safe to call twice."""
        process, self.process = self.process, None
        if process is not None:
            await _stop_group(process, signal.SIGTERM, STOP_TIMEOUT_S)
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._tmp_log_dir is not None:
            shutil.copytree(self._tmp_log_dir, self.log_dir, dirs_exist_ok=True)
            shutil.rmtree(self._tmp_log_dir, ignore_errors=True)
            self._tmp_log_dir = None

    async def __aenter__(self) -> IcecastServer:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()


_icecast_protocol: bool | None = None


async def ffmpeg_has_icecast_protocol() -> bool:
    """Whether this ffmpeg lists the icecast:// output protocol (asked once, then cached)."""
    global _icecast_protocol
    if _icecast_protocol is None:
        process = await asyncio.create_subprocess_exec(
            "ffmpeg",
            "-hide_banner",
            "-protocols",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await process.communicate()
        _icecast_protocol = "icecast" in out.decode(errors="replace").split()
    return _icecast_protocol


async def http_status(
    host: str,
    port: int,
    path: str,
    *,
    auth: tuple[str, str] | None = None,
    timeout: float = 2.0,
) -> int:
    """The status code of a raw ``GET path HTTP/1.0``, with basic auth if given (the body
    is not read)."""
    request = f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request += f"Authorization: Basic {token}\r\n"
    request += "\r\n"

    async def ask() -> int:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request.encode())
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return int(status_line.split()[1])

    return await asyncio.wait_for(ask(), timeout)


async def _mount_live(host: str, port: int, path: str, timeout: float = 2.0) -> bool:
    """True if GET ``path`` answers 200 and at least one byte of body follows."""

    async def ask() -> bool:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
            await writer.drain()
            status = (await reader.readline()).split()
            if len(status) < 2 or status[1] != b"200":
                return False
            await reader.readuntil(b"\r\n\r\n")
            return len(await reader.read(1)) == 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    try:
        return await asyncio.wait_for(ask(), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return False


class StreamSource:
    """An ffmpeg process streaming a sine tone as 64 kbit/s mono MP3 to one mount.

    ``protocol`` picks ffmpeg's ``icecast://`` output or a plain HTTP PUT (what Icecast
    2.4 accepts from sources, with basic auth); by default icecast:// if ffmpeg has it.
    """

    def __init__(
        self,
        server: IcecastServer,
        mount: str = "/test.mp3",
        *,
        frequency: int = 440,
        bitrate: str = "64k",
        protocol: Protocol | None = None,
    ) -> None:
        if shutil.which("ffmpeg") is None:
            raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg)")
        self.server = server
        self.mount = "/" + mount.lstrip("/")
        self.frequency = frequency
        self.bitrate = bitrate
        self.protocol = protocol
        self.process: asyncio.subprocess.Process | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The listener URL: ``http://127.0.0.1:PORT/mount``."""
        return f"{self.server.url}{self.mount}"

    def _command(self, protocol: Protocol) -> list[str]:
        s = self.server
        command = [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={self.frequency}:sample_rate=44100",
            "-ac",
            "1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            self.bitrate,
            "-content_type",
            "audio/mpeg",
            "-f",
            "mp3",
        ]
        auth = f"source:{s.source_password}@{s.host}:{s.port}{self.mount}"
        if protocol == "icecast":
            return [*command, f"icecast://{auth}"]
        # ffmpeg's HTTP output chunks a PUT by default, and Icecast 2.4 does not decode
        # chunked sources: the chunk sizes would end up in the listeners' audio.
        return [
            *command,
            "-method",
            "PUT",
            "-chunked_post",
            "0",
            "-headers",
            "Ice-Public: 0\r\n",
            f"http://{auth}",
        ]

    def stderr_text(self) -> str:
        """What ffmpeg wrote on stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace")
        self._stderr.seek(0, os.SEEK_END)
        return text

    async def start(self) -> StreamSource:
        """Launch ffmpeg; return once the mount answers 200 with audio bytes."""
        if self.process is not None:
            raise RuntimeError("the source is already running")
        protocol = self.protocol
        if protocol is None:
            protocol = "icecast" if await ffmpeg_has_icecast_protocol() else "http"
        self._stderr = tempfile.TemporaryFile()
        self.process = await asyncio.create_subprocess_exec(
            *self._command(protocol),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        try:
            failure = await self._wait_live(self.process)
        except BaseException:  # cancelled: leave no ffmpeg behind
            await self.stop()
            raise
        if failure is not None:
            stderr = self.stderr_text()
            await self.stop()
            raise RuntimeError(f"{failure}\n--- ffmpeg stderr ---\n{stderr}")
        return self

    async def _wait_live(self, process: asyncio.subprocess.Process) -> str | None:
        """None once the mount is live, else why it will not be."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not await _mount_live(self.server.host, self.server.port, self.mount):
            if process.returncode is not None:
                return f"ffmpeg exited with status {process.returncode}"
            if time.monotonic() > deadline:
                return f"{self.url} was not live within {START_TIMEOUT_S}s"
            await asyncio.sleep(POLL_INTERVAL_S)
        return None

    async def stop(self) -> None:
        """Kill ffmpeg at once (SIGKILL): for listeners the stream dies as on a crash."""
        process, self.process = self.process, None
        if process is not None:
            await _stop_group(process, signal.SIGKILL, STOP_TIMEOUT_S)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def __aenter__(self) -> StreamSource:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()
