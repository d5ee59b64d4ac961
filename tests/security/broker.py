"""A Mosquitto locked as in production (no anonymous clients, the files and the plugin the
control plane keeps), and a bare client holding one cluster's credentials."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devices import broker_auth, broker_dynsec
from devstack.broker import Broker, dynsec_plugin, free_port
from wire.mqtt_lite import LiteClient, MqttLiteError

CONTROL = "control-plane"


@pytest.fixture
async def locked_broker(tmp_path: Path) -> AsyncIterator[tuple[Broker, dict[str, Any]]]:
    """A Mosquitto that admits no one anonymous, reading the generated files; and the
    settings that let the control plane manage them."""
    files = {
        "mqtt_username": CONTROL,
        "mqtt_password": secrets.token_urlsafe(16),
        "broker_password_file": tmp_path / "passwd",
        "broker_acl_file": tmp_path / "acl",
        "broker_pid_file": tmp_path / "mosquitto.pid",
        "broker_dynsec_file": tmp_path / "dynamic-security.json",
    }
    plugin = dynsec_plugin()
    assert plugin is not None, "Mosquitto's dynamic-security plugin is missing"
    # The broker will not start without its files: the control plane's own entry first.
    files["broker_password_file"].write_text(
        broker_auth.password_file([(CONTROL, broker_auth.mosquitto_hash(files["mqtt_password"]))])
    )
    files["broker_acl_file"].write_text(broker_auth.acl_file(CONTROL, []))
    broker_dynsec.write_bootstrap(files["broker_dynsec_file"], CONTROL, [])
    device_port = free_port()
    broker = Broker(
        extra=(
            "allow_anonymous false\n"
            "user root\n"  # the test runs as root: no drop to a user who cannot read tmp
            f"password_file {files['broker_password_file']}\n"
            f"acl_file {files['broker_acl_file']}\n"
            f"plugin {plugin}\n"
            f"plugin_opt_config_file {files['broker_dynsec_file']}\n"
            # The clusters' listener, as deploy/mosquitto.production.conf has it.
            f"listener {device_port} 127.0.0.1\n"
            "use_username_as_clientid true\n"
        )
    )
    broker.start()
    broker.device_port = device_port  # type: ignore[attr-defined]
    assert broker.process is not None
    files["broker_pid_file"].write_text(str(broker.process.pid))
    try:
        yield broker, files
    finally:
        broker.close()


class Device:
    """A bare MQTT client with a cluster's name: what an attacker holding one cluster's
    credentials (or none) can do."""

    def __init__(
        self, broker: Broker, code: str, password: str | None, *, client_id: str | None = None
    ) -> None:
        self.broker = broker
        self.code = code
        self.got: list[tuple[str, bytes]] = []
        self.client = LiteClient(
            client_id or code,
            lambda t, p: self.got.append((t, p)),
            username=code,
            password=password,
        )

    async def connect(self) -> None:
        """On the clusters' listener."""
        await self.client.connect(self.broker.host, self.broker.device_port)  # type: ignore[attr-defined]


async def connects(device: Device) -> bool:
    try:
        await device.connect()
    except MqttLiteError:
        return False
    return True
