"""The control plane as real child processes (`python -m app serve`, `python -m app scheduler`)
with a test's settings: killed with SIGKILL, restarted, run side by side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from core.settings import Settings
from tests.support import eventually, system_trust

# The settings a child process must share with the test (the rest keep their defaults).
SHARED = (
    "environment",
    "database_url",
    "mqtt_host",
    "mqtt_port",
    "public_base_url",
    "media_dir",
    "resend_base_s",
    "resend_cap_s",
    "played_grace_s",
    "sweep_interval_s",
    "mqtt_share_group",
    "secret_key",
)


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The test's settings as a child process reads them (BROADCAST_*)."""
    values = {name.upper(): str(getattr(settings, name)) for name in SHARED}
    values.update({k.upper(): v for k, v in extra.items()})
    return {**os.environ, **{f"BROADCAST_{k}": v for k, v in values.items()}}


class ApiProcess:
    """`python -m app serve` on a port, jobs in-process (they elect a leader on PostgreSQL)."""

    def __init__(self, settings: Settings, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--port", str(port)],
                env=settings_env(settings, public_base_url=self.url),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def ready(self) -> ApiProcess:
        async with httpx.AsyncClient(verify=system_trust()) as client:

            async def answers() -> bool:
                if self.proc.poll() is not None:
                    raise AssertionError(f"the API exited: {self.log.read_text()[-2000:]}")
                try:
                    return (await client.get(f"{self.url}/readyz", timeout=2)).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(answers, bool, timeout=60, what=f"the API on {self.port}")
        return self

    def says(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no goodbye, nothing flushed, whatever it held in memory is gone."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
