"""README's first command: `broadcast demo` brings up a province and an emergency lands."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devstack.broker import free_port
from devstack.orchestrate import wait_until
from devstack.seed import DEMO_PASSWORD, MERGED_CLUSTERS

pytestmark = pytest.mark.slow
DEMO_TIMEOUT_S = 240


def test_demo_runs_a_province_and_every_cluster_confirms(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BROADCAST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/demo.db",
        "BROADCAST_MQTT_PORT": str(free_port()),  # nothing there: the demo starts Mosquitto
        "BROADCAST_MEDIA_DIR": str(tmp_path / "media"),
    }
    port = free_port()
    env["BROADCAST_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "app", "demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: (
                    demo.poll() is not None or "Press Ctrl-C" in log.read_text(errors="replace")
                ),
                timeout=DEMO_TIMEOUT_S,
                what="the demo to be up",
                every=0.5,
            )
            assert demo.poll() is None, log.read_text(errors="replace")
            # The console takes the demo's duty officer.
            signed_in = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/auth/login",
                json={"username": "truc.ban", "password": DEMO_PASSWORD},
            )
            assert signed_in.status_code == 200, signed_in.text
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(60)
    text = log.read_text(errors="replace")
    assert "started mosquitto with mosquitto.conf" in text
    # Today's Đồng Nai: both old fleets and the wards' e-boards, every one online.
    seeded = re.search(r"(\d+) clusters with \d+ speakers,\s+(\d+)\s+e-boards", text)
    assert seeded is not None, text
    assert int(seeded[1]) == MERGED_CLUSTERS and "Thành phố Đồng Nai" in text
    assert f"{int(seeded[1]) + int(seeded[2])} clusters online" in text
    assert "every cluster confirmed" in text
    assert f"http://127.0.0.1:{port}/docs" in text
    assert f"http://127.0.0.1:{port}/console" in text
