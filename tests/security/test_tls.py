"""TLS for real, with a throwaway CA made by scripts/make-certs: the control plane and the
clusters on the broker's TLS listener, the API and the media on https."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from core.settings import Settings
from devstack.broker import Broker, free_port
from simulator.fleet import Fleet
from simulator.provisioning import fetch_specs
from tests.broadcast.helpers import send, upload
from tests.factories import small_province
from tests.support import counts, reserve_port, start_stack
from wire.mqtt_lite import LiteClient, MqttLiteError

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1, made the documented way."""
    out = tmp_path / "certs"
    subprocess.run([PROJECT / "scripts" / "make-certs", str(out)], check=True, capture_output=True)
    return out


async def test_an_emergency_over_tls_from_end_to_end(
    settings_factory: Callable[..., Settings], certs: Path, tone_mp3: Path
) -> None:
    ca, cert, key = certs / "ca.crt", certs / "server.crt", certs / "server.key"
    tls_port = free_port()
    broker = Broker(
        extra=f"user root\nlistener {tls_port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"
    ).start()
    port = reserve_port()
    settings = settings_factory(
        http_port=port,
        public_base_url=f"https://127.0.0.1:{port}",
        mqtt_port=tls_port,
        mqtt_tls_ca=ca,
    )
    stack = await start_stack(create_app(settings), settings, port, tls=(cert, key, ca))
    fleet = Fleet([], host=broker.host, port=tls_port)
    try:
        assert stack.runtime.mqtt is not None and stack.runtime.mqtt.connected
        await small_province(stack)
        trusting = ssl.create_default_context(cafile=str(ca))
        specs = [s for s in await fetch_specs(settings.public_base_url, verify=trusting)]
        specs = [s for s in specs if "25216" in s.areas]
        fleet = Fleet(specs, host=broker.host, port=tls_port, seed=5, tls_ca=ca)
        await fleet.start()
        media = await upload(stack, tone_mp3)
        assert media["sha256"]
        sent = await send(stack, areas=["25216"], media_sha256=media["sha256"])
        done = await stack.wait_broadcast(
            sent["id"], lambda b: counts(b, "played") == len(specs), what="played over TLS"
        )
        assert done["counts"] == {"played": len(specs)}

        # Nobody talks to either in the clear, or trusting another CA.
        with pytest.raises((MqttLiteError, OSError, TimeoutError)):
            await LiteClient("clear", lambda t, p: None).connect(broker.host, tls_port, timeout=3)
        with pytest.raises(ssl.SSLCertVerificationError):
            await LiteClient("stranger", lambda t, p: None).connect(
                broker.host, tls_port, tls=ssl.create_default_context(), timeout=3
            )
        async with httpx.AsyncClient() as clear:
            with pytest.raises(httpx.HTTPError):
                await clear.get(f"http://127.0.0.1:{port}/healthz")
        async with httpx.AsyncClient() as stranger:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await stranger.get(f"https://127.0.0.1:{port}/healthz")
    finally:
        await fleet.close()
        await stack.stop()
        broker.close()
