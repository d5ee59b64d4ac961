"""The benchmarks' commands, `loadtest…` (bench/, imported inside each command, so
`broadcast serve` never loads them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from app.cli.options import ProcessesOption, configure_logging

app = typer.Typer()
# pyproject's [bench] extra: the benchmarks' own dependencies, not in the production image.
BENCH_EXTRA = ("psutil",)
# The load tests' common options (their defaults differ, so they are given at each use).
JsonOption = Annotated[Path, typer.Option("--json", help="where to write the results")]
DatabaseOption = Annotated[
    str | None,
    typer.Option(help='default: a fresh SQLite file; "postgresql": a fresh local database'),
]
NetworkOption = Annotated[
    str, typer.Option(help="the simulated links: lan, 4g (300 ms), weak-4g (1.5 s, losses)")
]


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
    inline: Annotated[
        bool,
        typer.Option(
            help="a clip small enough rides in the play command (--no-inline: every "
            "cluster downloads it, as before issue 24)"
        ),
    ] = True,
    stage: Annotated[
        float | None,
        typer.Option(
            help="emergency profile: the confirmation step first, staging each fresh clip "
            "on the clusters, and the send this many seconds later (a person reading: 3)"
        ),
    ] = None,
    warning: Annotated[
        bool,
        typer.Option(
            help="emergency profile: also a standard warning held on every cluster "
            "(docs/protocol.md 11.1): put in the library, held, checked by a self-test, "
            "then aired by its id, this often as --runs"
        ),
    ] = False,
    clip_seconds: Annotated[
        int,
        typer.Option(
            min=1,
            help="emergency profile: each clip's length (5 s: about 40 KB, carried in the "
            "command; a spoken warning of 20 s rides in it as its 16 kbit/s speech "
            "rendition; past 22.5 s it is downloaded, or staged with --stage)",
        ),
    ] = 5,
) -> None:
    """Full stack in separate processes, one profile of a day; JSON, HTML and PNG results."""
    _needs_the_bench_extra()
    from bench.loadtest import LoadtestOptions, run_loadtest
    from bench.profiles import PROFILES, run_profile

    if profile not in PROFILES:
        raise typer.BadParameter(f"unknown profile {profile!r}: one of {', '.join(PROFILES)}")
    configure_logging("WARNING")
    options = LoadtestOptions(
        clusters=clusters,
        json_path=json_path,
        processes=processes,
        database_url=database_url,
        timeout_s=timeout,
        edges=edges,
        network=_network(network),
        runs=runs,
        inline=inline,
        stage_s=stage,
        warning=warning,
        clip_s=clip_seconds,
    )
    if profile == "emergency":
        run_loadtest(options)
    else:
        run_profile(options, profile)


def _needs_the_bench_extra() -> None:
    """Say what to install rather than end in a traceback (`broadcast loadtest` in the
    production image, which leaves the extra out)."""
    missing = [name for name in BENCH_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        typer.echo(f"the benchmarks need {', '.join(missing)}: pip install '.[bench]'", err=True)
        raise typer.Exit(2)


def _network(name: str) -> str:
    from bench.networks import NETWORKS

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
    _needs_the_bench_extra()
    from bench.faults import SCENARIOS, FaultBenchOptions, run_fault_bench

    unknown = set(scenario or []) - set(SCENARIOS)
    if unknown:
        raise typer.BadParameter(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if (
        replicas > 1
        and database_url != "postgresql"
        and set(scenario or SCENARIOS) != {"db-restart"}
    ):
        raise typer.BadParameter("replicas share a PostgreSQL: add --database-url postgresql")
    configure_logging("WARNING")
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
    _needs_the_bench_extra()
    from bench.schedule import ScheduleBenchOptions, run_schedule_bench

    configure_logging("WARNING")
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
    _needs_the_bench_extra()
    from bench.telemetry import TelemetryBenchOptions, run_telemetry_bench

    configure_logging("WARNING")
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


@app.command("loadtest-console")
def loadtest_console(
    clusters: int = 1639,
    json_path: JsonOption = Path("console.json"),
    processes: ProcessesOption = 2,
    database_url: DatabaseOption = None,
) -> None:
    """The web console on a whole province: each page's time, and the live view's events
    while a province-wide emergency goes out."""
    _needs_the_bench_extra()
    from bench.console import run_console_bench
    from bench.loadtest import BenchOptions

    configure_logging("WARNING")
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
    _needs_the_bench_extra()
    from bench.ingest import run_ingest_bench

    configure_logging("WARNING")
    run_ingest_bench(minutes, json_path)


@app.command("loadtest-signin")
def loadtest_signin(
    addresses: Annotated[int, typer.Option(help="source addresses flooding sign-ins")] = 16,
    json_path: JsonOption = Path("signin.json"),
) -> None:
    """The duty officer's emergency request time, alone and while anonymous sign-ins
    flood the API from many addresses."""
    _needs_the_bench_extra()
    from bench.signin import run_signin_bench

    configure_logging("WARNING")
    run_signin_bench(addresses, json_path)


@app.command("loadtest-live")
def loadtest_live(
    clusters: int = 1639,
    processes: ProcessesOption = 2,
    seconds: Annotated[float, typer.Option(help="of the officer's audio")] = 60.0,
    json_path: JsonOption = Path("live.json"),
    database_url: DatabaseOption = None,
) -> None:
    """Live voice to a whole province: mouth-to-speaker latency (median, worst cluster)
    and the API's CPU per minute of live audio."""
    _needs_the_bench_extra()
    from bench.live import run_live_bench

    configure_logging("WARNING")
    run_live_bench(
        clusters=clusters,
        processes=processes,
        seconds=seconds,
        json_path=json_path,
        database_url=database_url,
    )


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
    _needs_the_bench_extra()
    from bench.flood import run_flood_bench

    configure_logging("WARNING")
    run_flood_bench(messages, clusters, json_path)


@app.command("loadtest-reorganise")
def loadtest_reorganise(
    processes: Annotated[int, typer.Option(help="simulator processes")] = 2,
    json_path: JsonOption = Path("reorganise.json"),
) -> None:
    """The 2025 reform applied to old Bình Phước's register with its whole fleet online:
    plan and apply times, an emergency mid-change, every device on its new topics."""
    _needs_the_bench_extra()
    from bench.reorganise import run_reorganise_bench

    configure_logging("WARNING")
    run_reorganise_bench(json_path, processes)
