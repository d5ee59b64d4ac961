"""The `broadcast` command. Heavy imports stay inside commands so `simulate` stays lean."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Provincial loudspeaker broadcast control.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
seed_app = typer.Typer(help="Demo data.", no_args_is_help=True)
keys_app = typer.Typer(help="The Ed25519 key that signs commands.", no_args_is_help=True)
cluster_app = typer.Typer(help="One cluster, for technicians.", no_args_is_help=True)
broker_app = typer.Typer(help="The broker's accounts and access lists.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts (on the database directly).", no_args_is_help=True)
areas_app = typer.Typer(help="The administrative units.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(seed_app, name="seed")
app.add_typer(keys_app, name="keys")
app.add_typer(cluster_app, name="cluster")
app.add_typer(users_app, name="users")
app.add_typer(broker_app, name="broker")
app.add_typer(areas_app, name="areas")

ApiOption = Annotated[str | None, typer.Option("--api", help="control plane URL")]
# The load tests' common options (their defaults differ, so they are given at each use).
JsonOption = Annotated[Path, typer.Option("--json", help="where to write the results")]
ProcessesOption = Annotated[int, typer.Option(help="simulator processes")]
DatabaseOption = Annotated[
    str | None,
    typer.Option(help='default: a fresh SQLite file; "postgresql": a fresh local database'),
]
NetworkOption = Annotated[
    str, typer.Option(help="the simulated links: lan, 4g (300 ms), weak-4g (1.5 s, losses)")
]


def _api(api: str | None) -> str:
    from core.settings import get_settings

    return api or get_settings().public_base_url


@app.command()
def health(
    area: Annotated[str, typer.Option(help="area code (its subtree)")] = "70",
    api: ApiOption = None,
) -> None:
    """Clusters online, offline, faulty and on battery per area, worst first; open alarms."""
    from rich.console import Console

    from app.technician import show_health

    show_health(_api(api), area, Console())


@cluster_app.command("show")
def cluster_show(code: str, api: ApiOption = None) -> None:
    """One cluster: link state, telemetry, open alarms."""
    from rich.console import Console

    from app.technician import show_cluster

    show_cluster(_api(api), code, Console())


@cluster_app.command("cmd")
def cluster_cmd(
    code: str,
    command: Annotated[
        str, typer.Argument(help="volume, amp-on, amp-off, reboot, test-tone, fm (kHz), status")
    ],
    value: Annotated[int | None, typer.Argument(help="volume 0-100, FM kHz, tone seconds")] = None,
    timeout: float = 60.0,
    api: ApiOption = None,
) -> None:
    """Send a remote command and wait for the cluster's answer (exit 1 unless done)."""
    from rich.console import Console

    from app.technician import send_command

    if not send_command(_api(api), code, command, value, Console(), timeout):
        raise typer.Exit(1)


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, province_officer, district_operator, ...")],
    area: Annotated[str | None, typer.Option(help="area code it is scoped to")] = None,
    full_name: str = "",
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
) -> None:
    """Create an account straight in the database: the first administrator, or one made
    while the API is down. Asks for the password (twice) unless --password-stdin."""
    import sys

    from pydantic import ValidationError

    from accounts import service
    from accounts.schemas import UserCreate
    from core.clock import SystemClock
    from core.database import create_engine, create_session_maker, session_scope
    from core.errors import AppError
    from core.settings import get_settings

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserCreate.model_validate(
            {
                "username": username,
                "password": password,
                "role": role,
                "area": area,
                "full_name": full_name,
            }
        )
    except ValidationError as exc:
        typer.echo(f"refused: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        settings = get_settings()
        engine = create_engine(settings.database_url)
        try:
            async with session_scope(create_session_maker(engine)) as session:
                await service.create(
                    session,
                    data,
                    by="cli",
                    now=SystemClock().now(),
                    production=settings.environment == "production",
                )
        finally:
            await engine.dispose()

    try:
        asyncio.run(main())
    except AppError as exc:
        typer.echo(f"refused: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {username} ({role}{', ' + area if area else ''})")


@broker_app.command("sync")
def broker_sync() -> None:
    """Write the broker's password and access files from the cluster register
    (BROKER_PASSWORD_FILE, BROKER_ACL_FILE) and signal it if they changed; hold every
    cluster account in its dynamic-security plugin first (before the broker's first
    start: write the plugin's file, BROKER_DYNSEC_FILE)."""
    from core.database import create_engine, create_session_maker, session_scope
    from core.settings import get_settings
    from devices import broker_auth

    settings = get_settings()
    if not broker_auth.managed(settings):
        typer.echo("BROKER_PASSWORD_FILE and BROKER_ACL_FILE are not set", err=True)
        raise typer.Exit(2)

    async def main() -> bool:
        engine = create_engine(settings.database_url)
        try:
            async with session_scope(create_session_maker(engine)) as session:
                return await broker_auth.sync(session, settings, starting=True)
        finally:
            await engine.dispose()

    changed = asyncio.run(main())
    typer.echo("broker files written" if changed else "broker files already up to date")


@app.command()
def login(
    username: Annotated[str, typer.Option(prompt=True)],
    api: ApiOption = None,
    days: Annotated[int, typer.Option(help="how long the token lasts")] = 30,
) -> None:
    """Sign in and print an API token for the other commands (export BROADCAST_TOKEN=...)."""
    import httpx

    password = typer.prompt("password", hide_input=True)
    with httpx.Client(base_url=_api(api), timeout=30) as client:
        signed_in = client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        if signed_in.status_code != 200:
            typer.echo(f"refused: {signed_in.json().get('error')}", err=True)
            raise typer.Exit(1)
        session = signed_in.json()["token"]
        created = client.post(
            "/api/v1/auth/tokens",
            json={"name": "cli", "days": days, "password": password},
            headers={"Authorization": f"Bearer {session}"},
        )
        created.raise_for_status()
        client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {session}"})
    typer.echo(f"export BROADCAST_TOKEN={created.json()['token']}")


def _logging(level: str = "INFO") -> None:
    from core.logs import configure

    configure(level)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    jobs: Annotated[bool, typer.Option(help="run the background jobs in this process")] = True,
    access_log: Annotated[bool, typer.Option(help="log every HTTP request")] = False,
    ssl_certfile: Annotated[Path | None, typer.Option(help="serve https with this")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="... and this key")] = None,
) -> None:
    """Run the HTTP API (and, by default, the background jobs). https with --ssl-certfile
    and --ssl-keyfile; behind nginx (docker-compose.yml) nginx terminates TLS instead."""
    import uvicorn

    from app.main import create_app
    from core.settings import get_settings

    _logging()
    settings = get_settings().model_copy(update={"run_jobs_in_api": jobs})
    uvicorn.run(
        create_app(settings, settle_heap=True),
        host=host,
        port=port,
        log_config=None,  # uvicorn's lines go through ours (text or JSON)
        log_level="info",
        access_log=access_log,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


@app.command("media-serve")
def media_serve(host: str = "127.0.0.1", port: int = 8001) -> None:
    """Serve the media directory to clusters (stateless; run as many as needed)."""
    import uvicorn

    from core.settings import get_settings
    from media.asgi import standalone_app

    _logging()
    settings = get_settings()
    uvicorn.run(
        standalone_app(settings.media_dir, settings.media_signing_key),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


@keys_app.command("generate")
def keys_generate() -> None:
    """New secrets for production: BROADCAST_SECRET_KEY (media grants, device keys) and
    BROADCAST_SIGNING_KEY (the Ed25519 seed that signs commands), with its public key."""
    import secrets

    from wire.signing import SigningKey

    key = SigningKey.generate()
    typer.echo(f"BROADCAST_SECRET_KEY={secrets.token_urlsafe(32)}")
    typer.echo(f"BROADCAST_SIGNING_KEY={key.seed_text}")
    typer.echo(f"seed (secret)  {key.seed_text}")
    typer.echo(f"public key     {key.public_text}")
    typer.echo(f"key id         {key.kid}")


@keys_app.command("show")
def keys_show() -> None:
    """The configured signing key's id and the public keys devices are told to trust."""
    from core.settings import get_settings

    settings = get_settings()
    typer.echo(f"signing key id {settings.signer.kid}")
    for public in settings.device_trusted_keys:
        typer.echo(f"trusted        {public}")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to the configured database."""
    from core.database import create_engine
    from core.migrate import upgrade
    from core.settings import get_settings

    async def main() -> None:
        engine = create_engine(get_settings().database_url)
        await upgrade(engine, revision)
        await engine.dispose()

    asyncio.run(main())
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to a revision ("base" for none)."""
    from core.database import create_engine
    from core.migrate import downgrade
    from core.settings import get_settings

    async def main() -> None:
        engine = create_engine(get_settings().database_url)
        await downgrade(engine, revision)
        await engine.dispose()

    asyncio.run(main())


@app.command()
def scheduler() -> None:
    """The background jobs as their own process: run several, one leads (PostgreSQL
    advisory lock); set BROADCAST_RUN_JOBS_IN_API=false on the API replicas."""
    from app.scheduler_process import run

    run()


@seed_app.command("demo")
def seed_demo_command(
    clusters: Annotated[
        int | None, typer.Option(help="speaker clusters to create (default: the province's)")
    ] = None,
    eboards: Annotated[bool, typer.Option(help="also create public e-boards")] = True,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="the province as on this day (YYYY-MM-DD); before 2025-07-01: old Bình Phước",
        ),
    ] = None,
) -> None:
    """Build the province with its clusters: today's Đồng Nai (95 communes and wards, no
    districts), or old Bình Phước (11 districts, 111 communes) with --as-of 2025-06-30."""
    from app.seed import seed_demo
    from core.clock import SystemClock
    from core.database import create_engine, create_session_maker, session_scope
    from core.settings import get_settings

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter(
            f"{as_of!r} is not a day (YYYY-MM-DD)", param_hint="--as-of"
        ) from None

    async def main() -> None:
        engine = create_engine(get_settings().database_url)
        async with session_scope(create_session_maker(engine)) as session:
            report = await seed_demo(
                session, SystemClock(), as_of=day, clusters=clusters, eboards=eboards
            )
        await engine.dispose()
        if report.created:
            districts = f"{report.districts} districts, " if report.districts else ""
            typer.echo(
                f"{report.province}: {districts}{report.communes} communes and wards, "
                f"{report.clusters} clusters with {report.speakers} speakers, "
                f"{report.eboards} e-boards"
            )
        else:
            typer.echo(f"{report.province} is already seeded")

    asyncio.run(main())


@areas_app.command("reorganise")
def areas_reorganise(
    effective: Annotated[str, typer.Option(help="the day the new units exist: 2025-07-01")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only print the plan")] = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="also write the plan's table here")
    ] = None,
) -> None:
    """Apply the official conversion to the register (issue 22): new areas created, old
    ones dissolved (kept), clusters re-homed, accounts re-scoped, schedules moved. Each
    step is one transaction; run it again after an interruption (or to see that nothing
    is left: applying twice changes nothing)."""
    from rich.console import Console
    from rich.table import Table

    from core.clock import SystemClock
    from core.database import create_engine, create_session_maker, session_scope
    from core.settings import get_settings
    from devices import broker_auth
    from reorganisation.apply import apply
    from reorganisation.official import VietnamProvinces
    from reorganisation.plan import build

    try:
        day = date.fromisoformat(effective)
    except ValueError:
        raise typer.BadParameter(f"{effective!r} is not a day", param_hint="--effective") from None
    settings = get_settings()

    async def main() -> None:
        engine = create_engine(settings.database_url)
        sessions = create_session_maker(engine)
        try:
            if dry_run:
                async with session_scope(sessions) as session:
                    plan = await build(session, VietnamProvinces(), day)
                steps: list[str] = []
            else:

                async def follow(step: str) -> None:
                    if step == "clusters":
                        async with session_scope(sessions) as session:
                            await broker_auth.sync(session, settings, starting=True)

                # The devices are told their new areas by the running control plane's
                # sweep (this process has no broker connection of its own).
                applied = await apply(
                    sessions,
                    asyncio.Lock(),
                    SystemClock(),
                    settings,
                    VietnamProvinces(),
                    day,
                    actor="cli",
                    after_step=follow,
                )
                plan, steps = applied.plan, applied.steps
        finally:
            await engine.dispose()
        table = Table("what", "item", "from", "to", title=f"{plan.province.name}, {day}")
        for row in plan.rows():
            table.add_row(*row)
        console = Console()
        console.print(table)
        console.print(plan.summary())
        console.print("dry run: nothing changed" if dry_run else f"applied: {steps or 'nothing'}")
        if csv_path is not None:
            csv_path.write_text(plan.csv(), encoding="utf-8")

    asyncio.run(main())


@app.command()
def simulate(
    clusters: Annotated[
        int | None, typer.Option(help="how many (default: all provisioned)")
    ] = None,
    api: Annotated[str | None, typer.Option(help="control plane URL")] = None,
    area: Annotated[str | None, typer.Option(help="only clusters under this area")] = None,
    processes: int = 1,
    offline: Annotated[float, typer.Option(help="share that never connects")] = 0.0,
    ack_loss: Annotated[float, typer.Option(help="share of acks dropped")] = 0.0,
    latency: Annotated[float, typer.Option(help="max extra ack delay, seconds")] = 0.0,
    churn: Annotated[float, typer.Option(help="share dropping their link per minute")] = 0.0,
    flapping: Annotated[float, typer.Option(help="share whose link drops every 4 s")] = 0.0,
    edge_port: Annotated[
        list[int] | None,
        typer.Option(help="an edge broker's port (repeatable): processes spread over them"),
    ] = None,
    duplicate_acks: Annotated[float, typer.Option(help="share of acks sent twice")] = 0.0,
    clock_skew: Annotated[
        float, typer.Option(help="seconds: a third of the clocks ahead, a third behind")
    ] = 0.0,
    time_compression: float = 1.0,
    heartbeat: float = 60.0,
) -> None:
    """Run simulated clusters against the broker until interrupted."""
    from core.settings import get_settings
    from simulator.runner import SimulateOptions, run

    settings = get_settings()
    _logging("WARNING")
    run(
        SimulateOptions(
            api_url=api or settings.public_base_url,
            broker_host=settings.mqtt_host,
            broker_port=settings.mqtt_port,
            edge_ports=tuple(edge_port or ()),
            clusters=clusters,
            area=area,
            processes=processes,
            offline=offline,
            ack_loss=ack_loss,
            latency_s=latency,
            churn_per_min=churn,
            flapping=flapping,
            duplicate_acks=duplicate_acks,
            clock_skew_s=clock_skew,
            time_compression=time_compression,
            heartbeat_s=heartbeat,
        )
    )


@app.command()
def alert(
    area: Annotated[list[str] | None, typer.Option(help="target area code (repeatable)")] = None,
    cluster: Annotated[list[str] | None, typer.Option(help="target cluster (repeatable)")] = None,
    media: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
    stream: Annotated[str | None, typer.Option(help="stream URL to relay")] = None,
    text: Annotated[
        str | None, typer.Option(help="bulletin text: read aloud if no --media/--stream")
    ] = None,
    bulletin: Annotated[str | None, typer.Option(help="an approved bulletin's id")] = None,
    title: str = "Thông báo khẩn cấp",
    cls: Annotated[
        str, typer.Option("--class", help="emergency, priority or normal")
    ] = "emergency",
    expires_in: Annotated[int, typer.Option(help="seconds until it expires")] = 3600,
    timeout: Annotated[float, typer.Option(help="seconds to watch")] = 120.0,
    api: Annotated[str | None, typer.Option(help="control plane URL")] = None,
) -> None:
    """Send a broadcast and show live progress until every cluster confirmed."""
    from app.alert import AlertRequest, send_and_watch
    from core.settings import get_settings

    if media is not None and stream is not None:
        raise typer.BadParameter("give --media or --stream, not both")
    if media is None and stream is None and not text and not bulletin:
        raise typer.BadParameter("give --media, --stream, --text or --bulletin")
    if not area and not cluster:
        raise typer.BadParameter("give at least one --area or --cluster")
    import httpx

    api_url = api or get_settings().public_base_url
    request = AlertRequest(
        api_url=api_url,
        areas=area or [],
        clusters=cluster or [],
        media=media,
        stream=stream,
        title=title,
        text=text,
        bulletin=bulletin,
        cls=cls,
        expires_in_s=expires_in,
        timeout_s=timeout,
    )
    try:
        ok = send_and_watch(request)
    except httpx.HTTPError as exc:
        # At 2 a.m. the duty officer needs the reason in one line, not a traceback.
        typer.echo(f"cannot reach the control plane at {api_url}: {exc!r}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(0 if ok else 1)


@app.command()
def demo(
    port: int = 8000,
    send_alert: Annotated[bool, typer.Option(help="send a province-wide emergency")] = True,
    processes: ProcessesOption = 2,
) -> None:
    """Everything at once: broker, database, demo province, API, simulated fleet."""
    from app.demo import run_demo

    _logging("WARNING")
    run_demo(port=port, send_alert=send_alert, processes=processes)


@app.command()
def loadtest(
    clusters: int = 1639,
    json_path: JsonOption = Path("loadtest.json"),
    processes: ProcessesOption = 2,
    database_url: DatabaseOption = None,
    timeout: float = 60.0,
    edges: Annotated[
        int, typer.Option(help="edge brokers bridged to the core, holding the clusters")
    ] = 0,
    profile: Annotated[
        str,
        typer.Option(
            help="emergency (one province-wide, then cached, then scheduled), morning "
            "(every commune's morning news, an emergency cutting in), alert-storm (every "
            "district's emergency at once, 3 waves), reconnect-storm (the broker restarted)"
        ),
    ] = "emergency",
    network: NetworkOption = "lan",
    runs: Annotated[
        int,
        typer.Option(
            min=1, help="emergency profile: fresh-clip and cached-clip emergencies, each this often"
        ),
    ] = 1,
) -> None:
    """Full stack in separate processes, one profile of a day; JSON, HTML and PNG results."""
    from app.load_profiles import PROFILES, run_profile
    from app.loadtest import LoadtestOptions, run_loadtest

    if profile not in PROFILES:
        raise typer.BadParameter(f"unknown profile {profile!r}: one of {', '.join(PROFILES)}")
    _logging("WARNING")
    options = LoadtestOptions(
        clusters=clusters,
        json_path=json_path,
        processes=processes,
        database_url=database_url,
        timeout_s=timeout,
        edges=edges,
        network=_network(network),
        runs=runs,
    )
    if profile == "emergency":
        run_loadtest(options)
    else:
        run_profile(options, profile)


def _network(name: str) -> str:
    from app.networks import NETWORKS

    if name not in NETWORKS:
        raise typer.BadParameter(f"unknown network {name!r}: one of {', '.join(NETWORKS)}")
    return name


@app.command("loadtest-faults")
def loadtest_faults(
    clusters: int = 1639,
    json_path: JsonOption = Path("faults.json"),
    processes: ProcessesOption = 2,
    database_url: DatabaseOption = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="baseline, broker-restart, api-kill, db-restart, flapping, duplicates, "
            "clock-skew (repeatable; default all)"
        ),
    ] = None,
    timeout: float = 120.0,
    network: NetworkOption = "lan",
    replicas: Annotated[
        int,
        typer.Option(
            help="API processes on one PostgreSQL and broker (api-kill then kills the "
            "leader for good); needs --database-url postgresql"
        ),
    ] = 1,
) -> None:
    """One province-wide emergency per fault: time until every cluster confirmed, lost,
    played twice."""
    from app.fault_bench import SCENARIOS, FaultBenchOptions, run_fault_bench

    unknown = set(scenario or []) - set(SCENARIOS)
    if unknown:
        raise typer.BadParameter(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if (
        replicas > 1
        and database_url != "postgresql"
        and set(scenario or SCENARIOS) != {"db-restart"}
    ):
        raise typer.BadParameter("replicas share a PostgreSQL: add --database-url postgresql")
    _logging("WARNING")
    run_fault_bench(
        FaultBenchOptions(
            clusters=clusters,
            json_path=json_path,
            processes=processes,
            database_url=database_url,
            scenarios=tuple(scenario or SCENARIOS),
            timeout_s=timeout,
            network=_network(network),
            replicas=replicas,
        )
    )


@app.command("loadtest-schedule")
def loadtest_schedule(
    clusters: int = 1639,
    json_path: JsonOption = Path("schedule-bench.json"),
    processes: ProcessesOption = 2,
    database_url: DatabaseOption = None,
    lead: Annotated[float, typer.Option(help="seconds from saving to the first slot")] = 60.0,
) -> None:
    """Three daily slots per commune: expand a week, push to every cluster, and how late
    the latest cluster starts the first slot."""
    from app.schedule_bench import ScheduleBenchOptions, run_schedule_bench

    _logging("WARNING")
    run_schedule_bench(
        ScheduleBenchOptions(
            clusters=clusters,
            json_path=json_path,
            processes=processes,
            database_url=database_url,
            lead_s=lead,
        )
    )


@app.command("loadtest-telemetry")
def loadtest_telemetry(
    clusters: int = 10000,
    heartbeats: int = 100_000,
    interval: Annotated[float, typer.Option(help="seconds between a cluster's heartbeats")] = 2.0,
    json_path: JsonOption = Path("telemetry.json"),
    processes: ProcessesOption = 4,
    database_url: DatabaseOption = None,
) -> None:
    """Heartbeats at a high rate: sustained ingest with the latest state and history
    written, and the province rollup's latency meanwhile."""
    from app.telemetry_bench import TelemetryBenchOptions, run_telemetry_bench

    _logging("WARNING")
    run_telemetry_bench(
        TelemetryBenchOptions(
            clusters=clusters,
            heartbeats=heartbeats,
            interval_s=interval,
            json_path=json_path,
            processes=processes,
            database_url=database_url,
        )
    )


@app.command("screenshots")
def screenshots(
    out: Annotated[Path, typer.Option(help="where the PNG files go")] = Path("docs/screenshots"),
    clusters: int = 1639,
    processes: ProcessesOption = 2,
) -> None:
    """The console's main pages photographed on a whole simulated province, in Debian's
    Chromium (the README shows them)."""
    from app.screenshots import take_screenshots

    _logging("WARNING")
    take_screenshots(out=out, clusters=clusters, processes=processes)


@app.command("loadtest-console")
def loadtest_console(
    clusters: int = 1639,
    json_path: JsonOption = Path("console.json"),
    processes: ProcessesOption = 2,
    database_url: DatabaseOption = None,
) -> None:
    """The web console on a whole province: each page's time, and the live view's events
    while a province-wide emergency goes out."""
    from app.console_bench import run_console_bench
    from app.loadtest import BenchOptions

    _logging("WARNING")
    run_console_bench(
        BenchOptions(
            clusters=clusters, json_path=json_path, processes=processes, database_url=database_url
        )
    )


@app.command("loadtest-ingest")
def loadtest_ingest(
    minutes: Annotated[float, typer.Option(help="length of the generated WAV")] = 30.0,
    json_path: JsonOption = Path("ingest.json"),
) -> None:
    """Upload a long CD-quality WAV to the API in its own process: wall time, peak memory,
    and the health endpoint's latency while ffmpeg works."""
    from app.ingest_bench import run_ingest_bench

    _logging("WARNING")
    run_ingest_bench(minutes, json_path)


@app.command("loadtest-signin")
def loadtest_signin(
    addresses: Annotated[int, typer.Option(help="source addresses flooding sign-ins")] = 16,
    json_path: JsonOption = Path("signin.json"),
) -> None:
    """The duty officer's emergency request time, alone and while anonymous sign-ins
    flood the API from many addresses."""
    from app.signin_bench import run_signin_bench

    _logging("WARNING")
    run_signin_bench(addresses, json_path)


@app.command()
def conformance(
    device: Annotated[str, typer.Option(help="the registered, online device to check")],
    api: Annotated[str, typer.Option(help="control plane URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(help="an API token (administrator)")] = None,
    heartbeat_s: Annotated[float, typer.Option(help="the device's heartbeat interval")] = 60.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="also write the results")] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="only this section's checks (repeat: --only 9 --only 11)"),
    ] = None,
    stream_url: Annotated[
        str | None,
        typer.Option(help="a live stream the device can reach (4.4); default: the kit's own"),
    ] = None,
    bulletin: Annotated[
        str | None, typer.Option(help="an approved bulletin with audio, for the schedules (11)")
    ] = None,
    cut_link: Annotated[
        str | None,
        typer.Option(
            help="a command, given N appended, that takes the device off the network for N s (11)"
        ),
    ] = None,
    schedule_lead_s: Annotated[
        float, typer.Option(help="how far ahead a schedule's slot is (more than the prefire)")
    ] = 10.0,
    firmware: Annotated[
        str | None, typer.Option(help="an uploaded, approved image's version to install (4.7)")
    ] = None,
) -> None:
    """Drive one device (or a vendor's simulator) through the protocol against a running
    control plane and its broker (MQTT_* settings), and print pass, fail or skip per
    section of docs/protocol.md. Exits 1 if any check fails."""
    from conformance.kit import Kit, command_cutting_the_link, report, to_json
    from core.settings import get_settings

    settings = get_settings()
    kit = Kit(
        api_url=api,
        device=device,
        mqtt_host=settings.mqtt_host,
        mqtt_port=settings.mqtt_port,
        mqtt_username=settings.mqtt_username,
        mqtt_password=settings.mqtt_password,
        headers={"Authorization": f"Bearer {token}"} if token else None,
        heartbeat_s=heartbeat_s,
        only=frozenset(only) if only else None,
        stream_url=stream_url,
        bulletin_id=bulletin,
        cut_link=command_cutting_the_link(cut_link) if cut_link else None,
        schedule_lead_s=schedule_lead_s,
        firmware=firmware,
    )
    checks = kit.run()
    typer.echo(report(checks))
    if json_path is not None:
        json_path.write_text(to_json(checks))
    if any(c.failed for c in checks):
        raise typer.Exit(1)


@app.command("loadtest-flood")
def loadtest_flood(
    messages: Annotated[
        int, typer.Option(help="malformed messages per flood (two floods)")
    ] = 100_000,
    clusters: Annotated[int, typer.Option(help="simulated clusters online meanwhile")] = 60,
    json_path: JsonOption = Path("flood.json"),
) -> None:
    """Malformed device messages on the device topics while clusters are online: API
    memory, /healthz latency, what was counted, every cluster online, an emergency after."""
    from app.flood_bench import run_flood_bench

    _logging("WARNING")
    run_flood_bench(messages, clusters, json_path)


@app.command("loadtest-reorganise")
def loadtest_reorganise(
    processes: Annotated[int, typer.Option(help="simulator processes")] = 2,
    json_path: JsonOption = Path("reorganise.json"),
) -> None:
    """The 2025 reform applied to old Bình Phước's register with its whole fleet online:
    plan and apply times, an emergency mid-change, every device on its new topics."""
    from app.reorganise_bench import run_reorganise_bench

    _logging("WARNING")
    run_reorganise_bench(json_path, processes)


def main() -> None:
    app()
