"""Layers point down (README, Architecture), checked from the source with `ast`:

- no package imports the application (`app/`), the composition root (the processes,
  `broadcast serve` and `broadcast scheduler`, are composed there);
- the request side (`web/`) does not either: routes ask for the narrow context they need
  (core/context.py and the domains' own), which the runtime satisfies structurally;
- nor does it import a domain, save who is asking (`accounts.identify`) and the area
  rule (`authority/`): the guard finds a broadcast's or an alarm's targets through
  resolvers the domains register (web/targets.py);
- no module-level import cycles;
- the wire format (`wire/`) imports nothing else of the project: it is the bottom layer;
- the simulator needs only the wire format (it stands in for a vendor's device);
- nothing the control plane runs with imports the benchmarks (`bench/`, their
  dependencies are an extra) or the development stack (`devstack/`); the CLI's commands
  import them inside the command (`broadcast serve` loads neither), and the conformance
  kit may use the development stack (it starts an Icecast and makes clips of its own);
- `core/` imports no domain (it may import the wire format).

Imports inside functions are not counted: they are how a module defers a heavy or
optional dependency, not a layer's dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "wire",
    "core",
    "web",
    "reorganisation",
    "transfer",
    "conformance",
    "authority",
    "accounts",
    "audit",
    "cap",
    "central",
    "console",
    "reports",
    "areas",
    "devices",
    "health",
    "firmware",
    "broadcast",
    "live",
    "bulletins",
    "media",
    "schedules",
    "standard_warnings",
    "scheduler",
    "simulator",
    "app",
    "devstack",
    "bench",
)
# The device protocol as a vendor implements it, and what the simulator may use besides
# (core/heap.py settles the garbage collector in every long-lived process).
WIRE = "wire"
SIMULATOR_ALSO = {"core", "core.heap"}
# What may import the development stack at module level besides itself: the benchmarks,
# and the vendors' kit (its own Icecast for a simulator on the same machine, its clips).
DEVSTACK_USERS = {"devstack", "bench", "conformance"}
# What the request side may import besides itself, core/ and the wire format.
WEB_STANDS_ON = {"authority", "accounts.identify"}
# What core/ may import besides itself: the layer below it.
BELOW_CORE = {"wire"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """The project modules `path` imports at its top level (not inside functions, not
    under `if TYPE_CHECKING:`)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in MODULES}


# A package that imports its own modules (`from app.cli import accounts` in app/cli/) is not
# a cycle.
GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _package(module: str) -> str:
    return module.split(".")[0]


def test_nothing_outside_the_application_imports_it() -> None:
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _package(target) == "app" and _package(module) != "app"
    )
    assert upward == []


def test_nothing_in_production_imports_the_benchmarks_or_the_development_stack() -> None:
    reaching = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if (_package(target) == "bench" and _package(module) != "bench")
        or (_package(target) == "devstack" and _package(module) not in DEVSTACK_USERS)
    )
    assert reaching == []


def test_serve_loads_neither_the_benchmarks_nor_the_development_stack() -> None:
    """What `broadcast serve` imports, imports inside functions included (the test above
    does not count those): the CLI defers bench/ and devstack/ into their commands."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, app.cli, app.main, app.scheduler_process;"
            "print(*sorted(sys.modules), sep=chr(10))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [m for m in loaded if _package(m) in ("bench", "devstack", "psutil")] == []


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    """Depth-first, each module once: an edge back to a module still on the path closes
    a cycle."""
    finished: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in finished:
            continue
        path, children = [start], [iter(sorted(graph[start]))]
        while path:
            child = next(children[-1], None)
            if child is None:
                finished.add(path.pop())
                children.pop()
            elif child in path:
                cycles.append([*path[path.index(child) :], child])
            elif child not in finished:
                path.append(child)
                children.append(iter(sorted(graph[child])))
    return cycles


def test_there_are_no_import_cycles() -> None:
    assert cycles_in(GRAPH) == []


def test_the_simulator_needs_only_the_wire_format() -> None:
    reached, todo = set(), [m for m in GRAPH if _package(m) == "simulator"]
    while todo:
        module = todo.pop()
        for target in GRAPH[module]:
            if target not in reached:
                reached.add(target)
                todo.append(target)
    beyond = {m for m in reached if _package(m) not in {"simulator", WIRE}} - SIMULATOR_ALSO
    assert sorted(beyond) == []


def test_the_wire_format_imports_nothing_else_of_the_project() -> None:
    above = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _package(module) == WIRE and _package(target) != WIRE
    )
    assert above == []


def test_the_request_side_imports_no_domain() -> None:
    def allowed(target: str) -> bool:
        return _package(target) in {"web", "core", WIRE} or any(
            target == m or target.startswith(f"{m}.") for m in WEB_STANDS_ON
        )

    domains = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _package(module) == "web" and not allowed(target)
    )
    assert domains == []


def test_core_imports_no_domain() -> None:
    domains = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _package(module) == "core" and _package(target) not in {"core", *BELOW_CORE}
    )
    assert domains == []


def test_the_checks_see_the_imports_and_the_cycles() -> None:
    """The graph is not empty by mistake (known edges are in it), and the cycle search
    finds one where there is one."""
    assert cycles_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles_in({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    assert "broadcast.context" in GRAPH["broadcast.sending"]
    assert "app.runtime" in GRAPH["app.scheduler_process"]
    assert "web.deps" in GRAPH["broadcast.router"]
    assert "web.targets" in GRAPH["web.guard"]
    assert "devstack.orchestrate" in GRAPH["bench.loadtest"]
    assert "devstack.icecast" in GRAPH["conformance.commands"]
    assert "wire.protocol" in GRAPH["core.mqtt"]
    assert "wire.protocol" in GRAPH["wire.signing"]
