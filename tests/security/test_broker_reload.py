"""The control plane tells the broker its files changed with SIGHUP to the pid in
BROKER_PID_FILE. A broker that died leaves that file behind and its pid is soon another
process's, which SIGHUP would kill: such a process is left alone, and the log says so."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from devices import broker_auth


def test_a_pid_file_naming_another_process_signals_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{stranger.pid}\n")
        with caplog.at_level(logging.ERROR, logger=broker_auth.__name__):
            broker_auth._reload(pid_file)
        assert stranger.poll() is None, "SIGHUP would have ended it"
        # (Its name is `sleep`, or still the forking `python` if it has not exec'd yet.)
        assert f"names process {stranger.pid}, " in caplog.text
        assert "not the broker" in caplog.text and "not signalled" in caplog.text
    finally:
        stranger.kill()
        stranger.wait()
