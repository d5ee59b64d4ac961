"""One rule for a cluster's topics (devices/moves.py): whatever changes a cluster's path
(an area moved under another parent, a cluster given another area, by PATCH or by CSV
import) marks it moving and tells the device its new areas, a signed set_areas; it
subscribes to them, leaves the old, and a broadcast to its new parent reaches it once,
one to its old parent not at all."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.database import session_scope
from devices import moves
from devices.models import Cluster
from health.models import Operation, OperationResult
from simulator.fleet import Fleet
from tests.broadcast.helpers import upload
from tests.factories import small_province
from tests.support import Stack, eventually
from wire.protocol import CommandKind

ROOT = Path(__file__).resolve().parents[2]
# What changes a cluster's path: its area, an area's path, the repath of a subtree.
PATH_FIELDS = {"area_id", "path"}
PATH_TABLES = {"Cluster", "Area"}
RULE = "mark_moving"
# The statement itself: its callers are what is checked.
THE_STATEMENT = "areas/repository.py:repath_subtree"


def path_writes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """What in `function` changes a cluster's path: an assignment to `.area_id` or
    `.path` (not `self.path`), an `update(Cluster | Area).values(area_id= | path=)`, a
    call to `repath_subtree`. A constructor (`Cluster(area_id=...)`) places, not moves."""
    found = []
    for node in ast.walk(function):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = [t for target in node.targets for t in _flat(target)]
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = _flat(node.target)
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr in PATH_FIELDS:
                if not (isinstance(target.value, ast.Name) and target.value.id == "self"):
                    found.append(f"assigns .{target.attr} (line {node.lineno})")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "repath_subtree":
                found.append(f"calls repath_subtree (line {node.lineno})")
            if node.func.attr == "values" and _updates(node.func.value) & PATH_TABLES:
                for keyword in node.keywords:
                    if keyword.arg in PATH_FIELDS:
                        found.append(f"updates {keyword.arg}= (line {node.lineno})")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "repath_subtree":
                found.append(f"calls repath_subtree (line {node.lineno})")
    return found


def _flat(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, ast.Tuple | ast.List):
        return [t for element in target.elts for t in _flat(element)]
    return [target]


def _updates(chain: ast.expr) -> set[str]:
    """The tables an `update(X).where(...)...` chain names."""
    names = set()
    for node in ast.walk(chain):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "update"
            and node.args
            and isinstance(node.args[0], ast.Name)
        ):
            names.add(node.args[0].id)
    return names


def calls_the_rule(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) == RULE or getattr(node.func, "id", None) == RULE)
        for node in ast.walk(function)
    )


def unmarked_writers(source: str, where: str = "") -> list[str]:
    return [
        f"{function.name} {what}"
        for function in ast.walk(ast.parse(source))
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        and not calls_the_rule(function)
        and f"{where}:{function.name}" != THE_STATEMENT
        for what in path_writes(function)
    ]


def test_every_writer_of_a_clusters_path_goes_through_the_rule() -> None:
    """A function that gives a cluster another area or an area another path marks the
    clusters moving first (devices.moves.mark_moving, which the write scope then holds
    to being told): a new writer that forgets fails here."""
    unmarked, writers = [], set()
    for path in ROOT.glob("*/**/*.py"):
        top = path.parts[len(ROOT.parts)]
        if top in ("tests", "migrations") or top.startswith("."):  # .venv, .venv-3.13
            continue
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT).as_posix()
        unmarked += [f"{where}: {found}" for found in unmarked_writers(source, where)]
        for function in ast.walk(ast.parse(source)):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                if path_writes(function):
                    writers.add(f"{where}:{function.name}")
    assert unmarked == []
    # The check found them: the rule's own two, and the reorganisation's.
    assert {
        "devices/moves.py:move_clusters",
        "devices/moves.py:move_subtree",
        "reorganisation/apply.py:_repath",
    } <= writers


@pytest.mark.parametrize(
    "writer",
    [
        "async def f(s, c, a):\n    c.area_id = a.id\n",
        "async def f(s, a, p):\n    a.name, a.path = 'x', p\n",
        "async def f(s):\n    await s.execute(update(Cluster).where(x).values(area_id=1))\n",
        "async def f(s):\n    await repository.repath_subtree(s, old_prefix='/a/', new_prefix='/b/')\n",
    ],
)
def test_the_check_finds_a_writer_that_forgets(writer: str) -> None:
    assert unmarked_writers(writer) != []
    marked = writer.replace("):\n", "):\n    await moves.mark_moving(s, clusters=[1])\n", 1)
    assert unmarked_writers(marked) == []


def test_placing_is_not_moving() -> None:
    """A new cluster's area, and other rows' area_id, are no move."""
    source = (
        "async def f(s, a):\n"
        "    s.add(Cluster(code='x', area_id=a.id))\n"
        "    await s.execute(update(Bulletin).values(area_id=a.id))\n"
        "    self.path = '/'\n"
    )
    assert unmarked_writers(source) == []


async def test_a_move_nobody_tells_is_not_committed(stack: Stack) -> None:
    """The write scope refuses to commit clusters moved and not told (a writer that
    marks but whose flow forgets to tell)."""
    await small_province(stack)
    with pytest.raises(moves.UntoldMove, match="1 cluster"):
        async with stack.runtime.writing() as session:
            cluster = (
                await session.scalars(select(Cluster).where(Cluster.code == "25216-01"))
            ).one()
            area = await session.scalar(select(Cluster.area_id).where(Cluster.code == "25231-01"))
            assert area is not None
            await moves.move_clusters(session, [(cluster, area)])
    assert await moving(stack) == set(), "rolled back"


async def test_an_area_moved_under_another_parent_moves_its_clusters(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    """PATCH /areas/25216 {parent_code: 695}: its clusters are told, subscribe to 695,
    leave 689; a broadcast to 695 reaches them once, one to 689 does not."""
    province = await small_province(stack)
    fleet = fleet_factory(province.online(), time_compression=10)
    await fleet.start()
    mover, stayer = fleet.devices["25216-01"], fleet.devices["25195-01"]

    moved = await stack.client.patch("/api/v1/areas/25216", json={"parent_code": "695"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["path"] == "/70/695/25216/"
    assert (await set_areas(stack))["25216-01"] == ["70", "695", "25216"]
    await eventually(lambda: moving(stack), lambda codes: "25216-01" not in codes, what="done")
    assert mover.spec.areas == ("70", "695", "25216")
    assert stayer.spec.areas == ("70", "689", "25195"), "a cluster outside is not told"
    assert await moving(stack) == {"25216-09"}, "the offline one waits, named meanwhile"

    clip = (await upload(stack, tone_mp3))["sha256"]
    to_old = await send(stack, "689", clip)  # first: the broker would hand it over first
    assert to_old["target_clusters"] == []
    to_new = await send(stack, "695", clip)
    assert to_new["target_clusters"] == ["25216-09"], "only the one still moving"
    await stack.wait_broadcast(to_new["id"], lambda b: b["counts"].get("played", 0) == 2)
    await stack.wait_broadcast(to_old["id"], lambda b: b["counts"].get("played", 0) == 1)
    assert mover.play_counts[to_new["id"]] == 1, "once"
    assert to_old["id"] not in mover.commanded, "its old parent's topic is left"
    assert stayer.play_counts[to_old["id"]] == 1

    # Moved back before the offline one answered: what it was sent names areas it no
    # longer has, so it is expired (its late `done` settles nothing) and it is told again.
    back = await stack.client.patch("/api/v1/areas/25216", json={"parent_code": "689"})
    assert back.status_code == 200, back.text
    assert (await set_areas(stack))["25216-09"] == ["70", "689", "25216"]
    async with session_scope(stack.runtime.sessions) as session:
        answers = (
            await session.execute(
                select(OperationResult.state, OperationResult.reason)
                .join(Cluster, OperationResult.cluster_id == Cluster.id)
                .where(Cluster.code == "25216-09")
                .order_by(OperationResult.id)
            )
        ).all()
    assert [tuple(a) for a in answers] == [("expired", "moved again"), ("sent", None)]


async def test_a_csv_import_that_moves_a_cluster_tells_it(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    """A clusters CSV row giving 25216-01 area 25231 moves it as a PATCH does; an areas
    CSV row giving 25195 another parent moves 25195's clusters."""
    province = await small_province(stack)
    fleet = fleet_factory(province.online(), time_compression=10)
    await fleet.start()
    mover = fleet.devices["25216-01"]

    rows = "code,name,area_code,latitude,longitude\n25216-01,Cụm loa 1,25231,11.51,106.91\n"
    imported = await stack.client.post(
        "/api/v1/clusters/import", files={"file": ("clusters.csv", rows, "text/csv")}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["updated"] == 1
    assert (await set_areas(stack))["25216-01"] == ["70", "695", "25231"]
    await eventually(lambda: moving(stack), lambda codes: "25216-01" not in codes, what="done")
    assert mover.spec.areas == ("70", "695", "25231")

    clip = (await upload(stack, tone_mp3))["sha256"]
    to_old = await send(stack, "25216", clip)  # first: the broker would hand it over first
    assert to_old["target_clusters"] == []
    to_new = await send(stack, "25231", clip)
    assert to_new["target_clusters"] == []
    await stack.wait_broadcast(to_new["id"], lambda b: b["counts"].get("played", 0) == 2)
    assert mover.play_counts[to_new["id"]] == 1, "once"
    assert to_old["id"] not in mover.commanded, "its old commune's topic is left"

    areas = "code,name,level,parent_code\n25195,Xã 25195,commune,695\n"
    imported = await stack.client.post(
        "/api/v1/areas/import", files={"file": ("areas.csv", areas, "text/csv")}
    )
    assert imported.status_code == 200, imported.text
    assert (await set_areas(stack))["25195-01"] == ["70", "695", "25195"]
    await eventually(lambda: moving(stack), lambda codes: "25195-01" not in codes, what="done")
    assert fleet.devices["25195-01"].spec.areas == ("70", "695", "25195")


async def send(stack: Stack, area: str, sha: str) -> dict[str, Any]:
    response = await stack.client.post(
        "/api/v1/broadcasts", json={"title": "Lũ", "areas": [area], "media_sha256": sha}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def set_areas(stack: Stack) -> dict[str, list[str]]:
    """Each cluster's latest set_areas: the areas it names."""
    async with session_scope(stack.runtime.sessions) as session:
        operations = await session.scalars(
            select(Operation)
            .where(Operation.kind == CommandKind.SET_AREAS.value)
            .order_by(Operation.created_at)
        )
        return {op.target_clusters[0]: op.params["areas"] for op in operations}


async def moving(stack: Stack) -> set[str]:
    async with session_scope(stack.runtime.sessions) as session:
        codes = await session.scalars(select(Cluster.code).where(Cluster.moving_from.is_not(None)))
        return set(codes)
