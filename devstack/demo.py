"""`broadcast demo`: a whole simulated province on the embedded defaults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from core.settings import get_settings
from devstack.orchestrate import (
    StackProcesses,
    run_module,
    stack_env,
    start_api,
    start_broker_if_needed,
    start_simulator,
)
from devstack.seed import DEMO_PASSWORD, DEMO_USERS, PROVINCE_CODE, ensure_demo_users
from devstack.synth import WARNING_TONE, tone

DEMO_AUDIO_S = 8
# Shown on the e-boards while the warning tone sounds on the speakers.
DEMO_TEXT = (
    "Diễn tập phòng chống lụt bão. Đề nghị bà con theo dõi thông báo của chính quyền địa "
    "phương. Đây là tin diễn tập."
)


@dataclass(frozen=True)
class Drill:
    """The province-wide emergency the demo sends once the fleet is online."""

    api_url: str
    area: str
    audio: Path
    title: str
    text: str
    timeout_s: float


# `broadcast alert`'s own sending and watching, handed in by the command (the development
# stack does not import app/, where the processes are composed).
type SendDrill = Callable[[Drill, Console], object]


def run_demo(*, port: int, send_drill: SendDrill | None, processes: int) -> None:
    """Everything at once; `send_drill`: how the drill is sent (None: no drill)."""
    console = Console()
    settings = get_settings()
    if settings.environment == "production":
        # The demo seeds accounts whose password the README prints, and an open broker.
        raise SystemExit("broadcast demo does not run with BROADCAST_ENVIRONMENT=production")
    broker, mqtt_port = start_broker_if_needed(settings.mqtt_host, settings.mqtt_port)
    console.print(
        f"broker: {'started mosquitto with mosquitto.conf' if broker else 'using the one'} "
        f"on {settings.mqtt_host}:{mqtt_port}"
    )
    env = stack_env(
        database_url=settings.database_url,
        mqtt_host=settings.mqtt_host,
        mqtt_port=mqtt_port,
        api_port=port,
        media_dir=settings.media_dir,
    )
    stack = StackProcesses(env=env, api_url=f"http://127.0.0.1:{port}", broker=broker)
    Path("var").mkdir(exist_ok=True)  # logs and the demo clip live here
    try:
        console.print(run_module("app", "db", "upgrade", env=env))
        console.print(run_module("app", "seed", "demo", env=env))
        asyncio.run(ensure_demo_users(settings.database_url))
        start_api(stack, port, log=Path("var/api.log"))
        console.print(f"API: {stack.api_url}/docs  (log: var/api.log)")
        provisioned = _count_provisioned(stack.api_url)
        console.print(f"starting {provisioned} simulated clusters in {processes} processes ...")
        start_simulator(stack, "--processes", str(processes), expected=provisioned)
        console.print(f"[green]{provisioned} clusters online[/]")
        audio = Path("var/demo-alert.mp3")
        if not audio.exists():
            tone(audio, DEMO_AUDIO_S, source=WARNING_TONE)
        if send_drill is not None:
            send_drill(
                Drill(
                    api_url=stack.api_url,
                    area=str(PROVINCE_CODE),
                    audio=audio,
                    title="Diễn tập: cảnh báo lũ toàn tỉnh",
                    text=DEMO_TEXT,
                    timeout_s=60,
                ),
                console,
            )
        console.print(
            "\n[bold]Where to look[/]\n"
            f"  web console                {stack.api_url}/console  (users: "
            f"{', '.join(u for u, *_ in DEMO_USERS)}; password: {DEMO_PASSWORD})\n"
            f"  API and its documentation  {stack.api_url}/docs\n"
            f"  clusters online            {stack.api_url}/api/v1/clusters?online=true\n"
            f"  broadcasts                 {stack.api_url}/api/v1/broadcasts\n"
            f"  device messages refused    {stack.api_url}/api/v1/ingest\n"
            f"  send another emergency     broadcast alert --api {stack.api_url} --area {PROVINCE_CODE} "
            f"--media {audio}\n"
            f"  one from typed text        broadcast alert --api {stack.api_url} --area {PROVINCE_CODE} "
            '--text "Diễn tập: lúc 14h30 mực nước sông Bé đạt 12,5 m"\n'
            f"  the editorial queue        {stack.api_url}/api/v1/bulletins?status=submitted\n"
            "Press Ctrl-C to stop."
        )
        asyncio.run(_forever())
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping ...")
        stack.stop()


def _count_provisioned(api_url: str) -> int:
    import httpx

    return len(httpx.get(f"{api_url}/api/v1/clusters/provisioning", timeout=30).json())


async def _forever() -> None:
    await asyncio.Event().wait()
