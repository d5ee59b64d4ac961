"""Structured logs: with BROADCAST_LOG_FORMAT=json every line a process writes is one
JSON object a collector can filter on, uvicorn's own lines included."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROGRAM = """
import logging
from core.logs import configure
configure("INFO")
log = logging.getLogger("broadcast.sending")
log.info("sent %s to %d clusters", "bc-1", 1639, extra={"broadcast": "bc-1", "area": "70"})
logging.getLogger("uvicorn.error").warning("Cụm loa không phản hồi")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("the job failed")
"""


def _run(fmt: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env={**os.environ, "BROADCAST_LOG_FORMAT": fmt},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr.splitlines()


def test_json_lines_carry_the_fields_a_collector_filters_on() -> None:
    lines = [json.loads(line) for line in _run("json")]  # every line is one JSON object
    sent, uvicorn, failed = lines
    assert sent["message"] == "sent bc-1 to 1639 clusters"
    assert (sent["level"], sent["logger"]) == ("INFO", "broadcast.sending")
    assert (sent["broadcast"], sent["area"]) == ("bc-1", "70")
    assert sent["time"].endswith("+00:00")
    assert uvicorn["logger"] == "uvicorn.error" and uvicorn["message"] == "Cụm loa không phản hồi"
    assert failed["level"] == "ERROR"
    assert "ZeroDivisionError" in failed["exception"] and "Traceback" in failed["exception"]


def test_text_by_default_and_a_clear_error_for_a_wrong_format() -> None:
    first = _run("text")[0]
    assert "INFO broadcast.sending: sent bc-1 to 1639 clusters" in first
    with pytest.raises(subprocess.CalledProcessError) as refused:
        _run("xml")
    assert "BROADCAST_LOG_FORMAT must be text or json" in refused.value.stderr
