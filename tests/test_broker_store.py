"""The project's brokers (tests, demo, benches: devstack/broker.py) write their store, or do
not start (issue 20)."""

from __future__ import annotations

import pytest

from devstack.broker import Broker


def test_a_broker_that_cannot_write_its_store_fails_loudly() -> None:
    """Started as root, Mosquitto drops to the `mosquitto` user; a store it cannot write
    used to show only as "Permission denied" at each autosave (retained key sets and
    schedules lost at the next restart). The project's brokers now refuse to start."""
    broker = Broker()
    broker.store.chmod(0o500)  # nobody but root may write; the broker is not root
    try:
        with pytest.raises(RuntimeError, match="cannot write its store"):
            broker.start()
    finally:
        broker.close()
    with Broker() as fine:  # the store as the project makes it: written at once
        assert (fine.store / "mosquitto.db").exists()
