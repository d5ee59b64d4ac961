"""The protocol module: round trips, limits, and its purity (the simulator imports it)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from wire import protocol


def test_command_round_trip_keeps_every_field() -> None:
    now = datetime.now(UTC)
    command = protocol.Command.model_validate(
        {
            "id": "c1",
            "kind": "play",
            "broadcast": "b1",
            "class": "priority",
            "level": "district",
            "issued_at": now,
            "expires_at": now + timedelta(minutes=5),
            "target": {"area": "70"},
            "media": {
                "url": "http://h/media/" + "a" * 64,
                "sha256": "a" * 64,
                "size": 10,
                "duration_ms": 1000,
            },
            "repeat": 3,
        }
    )
    parsed = protocol.parse_command(command.to_json())
    assert parsed == command
    assert b'"class":"priority"' in command.to_json()


def test_payloads_outside_the_spec_are_refused_with_the_field() -> None:
    with pytest.raises(protocol.ProtocolError, match="stage"):
        protocol.parse_ack(
            b'{"v":1,"cmd":"c","broadcast":"b","cluster":"x","stage":"heard",'
            b'"at":"2026-01-01T00:00:00Z"}'
        )
    with pytest.raises(protocol.ProtocolError, match="v"):
        protocol.parse_status(b'{"v":2,"cluster":"x","online":true}')
    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        protocol.parse_ack(b" " * (protocol.MAX_PAYLOAD_BYTES + 1))


def test_topics() -> None:
    assert protocol.cluster_code_from_topic(protocol.ack_topic("25195-01")) == "25195-01"
    assert protocol.cluster_code_from_topic("bc/v1/area/70/cmd") is None
    assert protocol.shared("g", protocol.ACK_FILTER) == "$share/g/bc/v1/cluster/+/ack"
    assert (
        protocol.message_expiry_s(
            datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC)
        )
        == 1
    )


def test_the_simulator_imports_no_database_code() -> None:
    code = (
        "import sys, simulator.runner, simulator.fleet, simulator.device, wire.protocol\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'aiosqlite', "
        "'asyncpg', 'alembic', 'fastapi')]\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
