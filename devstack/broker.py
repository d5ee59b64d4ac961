"""Start a Mosquitto with the project's mosquitto.conf on a chosen port (demo, tests, load)."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PROJECT_CONF = Path(__file__).resolve().parent.parent / "mosquitto.conf"
START_TIMEOUT_S = 10.0
STORE_CHECK_S = 5.0


# Where distributions put Mosquitto's dynamic-security plugin (Debian/Ubuntu multiarch,
# the eclipse-mosquitto image, a source build).
DYNSEC_PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)


def dynsec_plugin() -> Path | None:
    """The dynamic-security plugin of the installed Mosquitto, if it has one."""
    for pattern in DYNSEC_PLUGIN_GLOBS:
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return found[0]
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# An MQTT 3.1.1 CONNECT with a clean session, keep-alive 10 s and client id "probe".
_PROBE_CONNECT = bytes([0x10, 17, 0, 4, *b"MQTT", 4, 0x02, 0, 10, 0, 5, *b"probe"])
_DISCONNECT = bytes([0xE0, 0])


def answers_mqtt(host: str, port: int, timeout: float = 0.5) -> bool:
    """True once the broker answers a CONNECT (any CONNACK, even a refusal). An open
    port is not enough: Mosquitto listens before it installs its signal handlers, and a
    SIGUSR1 in that gap kills it (seen once in CI, on a broker with a second listener)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(_PROBE_CONNECT)
            answer = s.recv(4)
            if answer[:1] == b"\x20":
                s.sendall(_DISCONNECT)
                return True
            return False
    except OSError:
        return False


def wait_mqtt(host: str, port: int, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not answers_mqtt(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no MQTT broker answers on {host}:{port} after {timeout}s")
        time.sleep(0.05)


class Broker:
    """A mosquitto process; stops with the object (or the context manager)."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", extra: str = "") -> None:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.host = host
        self.port = port or free_port(host)
        self._dir = tempfile.TemporaryDirectory(prefix="mosquitto-")
        conf = PROJECT_CONF.read_text()
        conf = re.sub(r"(?m)^listener\s+\d+.*$", f"listener {self.port} {host}", conf)
        # Its own store, kept across restart(); writable by the user mosquitto drops to.
        store = Path(self._dir.name) / "store"
        store.mkdir()
        store.chmod(0o777)
        Path(self._dir.name).chmod(0o711)  # passable, not listable
        conf = re.sub(r"(?m)^persistence_location\s+.*$", f"persistence_location {store}/", conf)
        self.store = store
        self.conf_path = Path(self._dir.name) / "mosquitto.conf"
        self.conf_path.write_text(conf + "\n" + extra)
        self.log_path = Path(self._dir.name) / "mosquitto.log"
        self._log = self.log_path.open("wb")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf_path)], stdout=self._log, stderr=self._log
        )
        try:
            wait_mqtt(self.host, self.port)
        except TimeoutError:
            log = self._log_text()
            self.close()
            raise RuntimeError(f"mosquitto failed to start: {log}") from None
        self._check_store()
        return self

    def _check_store(self) -> None:
        """Fail loudly if the broker cannot write its persistence file. Started as root,
        Mosquitto drops to the `mosquitto` user; a store that user cannot write only shows
        as "Permission denied" at each autosave, and retained key sets and schedules are
        then lost at the next restart (issue 20). SIGUSR1 makes it save now."""
        assert self.process is not None
        if not re.search(r"(?m)^persistence\s+true", self.conf_path.read_text()):
            return
        saved = self.store / "mosquitto.db"
        deadline = time.monotonic() + STORE_CHECK_S
        asked = 0.0
        while not saved.exists():
            failed = "Permission denied" in self._log_text() or self.process.poll() is not None
            if failed or time.monotonic() > deadline:
                log = self._log_text()[-500:]
                self.close()
                raise RuntimeError(f"mosquitto cannot write its store {self.store}: {log}")
            # Asked again each second: the save happens at the loop's next turn, and a
            # loaded machine may take its time.
            if time.monotonic() - asked > 1.0:
                self.process.send_signal(signal.SIGUSR1)
                asked = time.monotonic()
            time.sleep(0.02)

    def _log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if not self._log.closed:
            self._log.close()
        self._dir.cleanup()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()


def bridge_to(core: Broker, name: str) -> str:
    """An edge broker's bridge to the core (Mosquitto's own bridging, MQTT 5): commands,
    schedules and keys come in from the control plane's broker, the devices' acks,
    status and heartbeats go out to it. Clusters connect to edges, the control plane to
    the core: one broker per ~19,000 clusters here (20,000 file descriptors a process)."""
    return "\n".join(
        [
            f"connection {name}",
            f"address {core.host}:{core.port}",
            "bridge_protocol_version mqttv50",
            "cleansession true",
            "try_private true",
            *BRIDGE_TOPICS,
            "",
        ]
    )


# What crosses a bridge (deploy/mosquitto.edge.conf carries the same lines).
BRIDGE_TOPICS = (
    "topic bc/v1/area/+/cmd in 1",
    "topic bc/v1/cluster/+/cmd in 1",
    "topic bc/v1/cluster/+/schedule in 1",
    "topic bc/v1/keys in 1",
    "topic bc/v1/cluster/+/ack out 1",
    "topic bc/v1/cluster/+/status out 1",
    "topic bc/v1/cluster/+/hb out 1",
)


class BrokerTier:
    """A core broker (the control plane's) and `edges` brokers bridged to it (the
    clusters'); with no edges, the core alone."""

    def __init__(self, edges: int = 0) -> None:
        self.core = Broker()
        self.edges = [Broker(extra=bridge_to(self.core, f"edge{k}-to-core")) for k in range(edges)]

    def start(self) -> BrokerTier:
        self.core.start()
        for edge in self.edges:
            edge.start()
        return self

    @property
    def for_clusters(self) -> list[Broker]:
        return self.edges or [self.core]

    def close(self) -> None:
        for broker in [*self.edges, self.core]:
            broker.close()
