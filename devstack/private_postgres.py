"""A PostgreSQL server of our own: initialised in a temporary directory, listening on a
free port, and ours to crash and restart (the machine's shared server is not). The fault
scenario "the database restarted" (tests/faults, `broadcast loadtest-faults`) runs on it.

Built from the machine's own PostgreSQL binaries (Debian's postgresql package); as root,
they run as the `postgres` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from devstack.broker import free_port


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def binaries() -> Path:
    """The directory holding initdb and pg_ctl."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise PostgresUnavailable("no initdb on PATH or under /usr/lib/postgresql")
    return Path(candidates[-1]).parent


class PrivatePostgres:
    def __init__(self) -> None:
        self.port = free_port()
        self._bin = binaries()
        self._dir = Path(tempfile.mkdtemp(prefix="private-pg-"))
        self.data = self._dir / "data"
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        """Its `postgres` database, for the control plane (SQLAlchemy with asyncpg)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bin / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self._dir)
        if done.returncode != 0:
            log = self._dir / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stderr}{tail}")

    def start(self) -> PrivatePostgres:
        if self._as_postgres:
            shutil.chown(self._dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self._dir} "
            # A test server: durability against power loss is not what is tested here
            # (a crash of the server process loses nothing committed: the
            # log is written at each commit, it is not forced to the disk).
            "-c fsync=off -c full_page_writes=off"
        )
        self._pg_ctl("-o", options, "start")
        return self

    def restart(self) -> None:
        """Crash it (every server process killed at once, `immediate`: nothing is flushed
        or said goodbye to) and start it again, which replays its write-ahead log."""
        self._pg_ctl("-m", "immediate", "restart")

    def _pg_ctl(self, *args: str) -> None:
        # Always with the log file: without one the server would write to our pipe,
        # which it would then hold open for ever.
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self._dir / "server.log"), "-w", *args)

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._pg_ctl("-m", "immediate", "stop")
            except RuntimeError:
                pass  # already gone: the directory goes anyway
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()
