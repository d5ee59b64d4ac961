"""Two provinces into one system (issue 22, item 3): one instance's register, history and
media exported, imported into another's database; what is the same merged, what
conflicts reported and skipped (never overwritten), a bad archive refused whole."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from areas.models import Area
from broadcast.models import Broadcast, Delivery
from core.clock import SystemClock
from core.database import Base, create_engine
from devices.models import Cluster
from media.storage import media_path
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, send, upload
from tests.factories import small_province
from tests.security.helpers import make_user
from tests.support import Stack
from transfer import ArchiveError, export, import_archive
from transfer.archive import MANIFEST, table_member
from transfer.tables import LEFT_OUT, POLICIES, check_complete

StackFactory = Callable[..., Awaitable[Stack]]


def test_every_table_is_exported_or_left_out_with_a_reason() -> None:
    check_complete()  # refuses a table named in neither list
    assert set(POLICIES) | set(LEFT_OUT) == set(Base.metadata.tables)
    assert "auth_tokens" in LEFT_OUT, "tokens must never travel"
    assert all(reason for reason in LEFT_OUT.values())


async def old_instance(stack: Stack, tone_mp3: Path) -> dict[str, Any]:
    """A small province with e-boards, a person, a clip, a bulletin and an emergency sent
    (its deliveries queued: no fleet runs)."""
    await small_province(stack, eboards=True)
    await make_user(stack, "xa.thacmo", role="commune_operator", area="25216")
    clip = await upload(stack, tone_mp3)
    await approved_bulletin(stack, title="Bản tin sáng", media_sha256=clip["sha256"])
    sent = await send(stack, areas=["70"], media_sha256=clip["sha256"])
    return {"clip": clip, "broadcast": sent}


async def counts(url: str) -> dict[str, int]:
    """Rows of every exported table; the audit log without what a running stack hears
    from the shared broker meanwhile (an earlier test's device's retained status, refused
    as unknown and audited: not the test's doing)."""
    engine = create_engine(url)
    found: dict[str, int] = {}
    try:
        async with engine.connect() as connection:
            for name, table in Base.metadata.tables.items():
                if name in POLICIES:
                    query = select(func.count()).select_from(table)
                    if name == "audit_events":
                        query = query.where(~table.c.action.startswith("mqtt "))
                    found[name] = int(await connection.scalar(query) or 0)
    finally:
        await engine.dispose()
    return found


async def export_from(stack: Stack, out: Path) -> Path:
    engine = create_engine(stack.settings.database_url)
    try:
        await export(engine, stack.settings, out, SystemClock())
    finally:
        await engine.dispose()
    return out


async def import_into(stack: Stack, archive: Path, *, dry_run: bool = False) -> Any:
    engine: AsyncEngine = create_engine(stack.settings.database_url)
    try:
        return await import_archive(
            engine, stack.settings, archive, SystemClock(), dry_run=dry_run, actor="test"
        )
    finally:
        await engine.dispose()


async def test_the_round_trip_reproduces_the_register_history_and_media(
    stack: Stack, stack_factory: StackFactory, other_db: str, tone_mp3: Path, tmp_path: Path
) -> None:
    made = await old_instance(stack, tone_mp3)
    before = await counts(stack.settings.database_url)
    archive = await export_from(stack, tmp_path / "binh-phuoc.tar.gz")

    other = await stack_factory(database_url=other_db, media_dir=tmp_path / "other-media")
    report = await import_into(other, archive)

    after = await counts(other_db)
    assert after == {**before, "audit_events": before["audit_events"] + 1}  # the import's own
    assert not report.conflicts
    assert report.tables["clusters"].added == before["clusters"]
    # Ids are this database's, and every reference followed them.
    old = await deliveries(stack.settings.database_url, made["broadcast"]["id"])
    new = await deliveries(other_db, made["broadcast"]["id"])
    assert new == old, "each delivery still names its broadcast, cluster and area"
    sha = made["clip"]["sha256"]
    assert media_path(other.settings.media_dir, sha).read_bytes() == (
        media_path(stack.settings.media_dir, sha).read_bytes()
    )
    signed_in = await other.client.get(f"/api/v1/broadcasts/{made['broadcast']['id']}")
    assert signed_in.status_code == 200, "the history reads through the API there"


async def deliveries(url: str, broadcast_id: str) -> set[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Delivery.broadcast_id, Cluster.code, Area.code)
                .join(Cluster, Cluster.id == Delivery.cluster_id)
                .join(Area, Area.id == Delivery.area_id)
                .where(Delivery.broadcast_id == broadcast_id)
            )
            return {(b, c, a) for b, c, a in rows.all()}
    finally:
        await engine.dispose()


async def registered(url: str) -> dict[str, tuple[Any, ...]]:
    """Every area and cluster as it reads, by code."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            areas = await connection.execute(select(Area.code, Area.name, Area.parent_id))
            clusters = await connection.execute(
                select(Cluster.code, Cluster.name, Cluster.area_id, Cluster.mqtt_password_hash)
            )
            return {f"area {r[0]}": tuple(r) for r in areas.all()} | {
                f"cluster {r[0]}": tuple(r) for r in clusters.all()
            }
    finally:
        await engine.dispose()


async def test_conflicts_are_reported_and_skipped_never_overwritten(
    stack: Stack, stack_factory: StackFactory, other_db: str, tone_mp3: Path, tmp_path: Path
) -> None:
    """The receiving register already holds province 70 and district 689 as the same
    units, commune 25216 with its clusters (the same codes: a conflict), and district 695
    under another name (a conflict: 25231 and its clusters depend on it)."""
    made = await old_instance(stack, tone_mp3)
    archive = await export_from(stack, tmp_path / "a.tar.gz")
    other = await stack_factory(database_url=other_db, media_dir=tmp_path / "other-media")
    await small_province(other, districts={"689": ["25216"]})
    renamed = {"code": "695", "name": "Thị xã Khác", "level": "district", "parent_code": "70"}
    assert (await other.client.post("/api/v1/areas", json=renamed)).status_code == 201
    held = await registered(other_db)
    unchanged = await counts(other_db)

    dry = await import_into(other, archive, dry_run=True)
    assert await counts(other_db) == unchanged, "a dry run writes nothing"

    report = await import_into(other, archive)
    assert report.as_dict()["tables"] == dry.as_dict()["tables"], "the dry run told the truth"
    conflicts = {(c.table, c.key) for c in report.conflicts}
    assert conflicts == {
        ("areas", "695"),
        ("clusters", "25216-01"),
        ("clusters", "25216-09"),
    }
    assert "name 'Thị xã Khác' here, 'Huyện 695' in the archive" in next(
        c.reason for c in report.conflicts if c.key == "695"
    )
    areas = report.tables["areas"]
    assert (areas.merged, areas.added, areas.conflicts) == (3, 1, 1), "70, 689, 25216 merged"
    assert areas.skipped == 1, "25231 under the conflicting 695"
    clusters = report.tables["clusters"]
    assert clusters.added == 4, "25195's three, and EB-25216 in the merged 25216"
    assert clusters.skipped == 3, "25231's three, under the conflicting 695"
    reasons = report.skipped_because["deliveries"]
    assert any("clusters 25216-01" in reason for reason in reasons)

    now = await registered(other_db)
    assert {k: now[k] for k in held} == held, "nothing here overwritten"
    sent = await deliveries(stack.settings.database_url, made["broadcast"]["id"])
    delivered = await deliveries(other_db, made["broadcast"]["id"])
    assert delivered == {
        d for d in sent if d[1] in {"EB-25216", "25195-01", "25195-09", "EB-25195"}
    }

    again = await import_into(other, archive)
    added = {name: t.added for name, t in again.tables.items() if t.added}
    assert added == {}, "a second import adds nothing (but its own audit entry)"


async def test_a_truncated_archive_is_refused_whole(
    stack: Stack, stack_factory: StackFactory, other_db: str, tone_mp3: Path, tmp_path: Path
) -> None:
    await old_instance(stack, tone_mp3)
    archive = await export_from(stack, tmp_path / "a.tar.gz")
    other = await stack_factory(database_url=other_db, media_dir=tmp_path / "other-media")
    unchanged = await counts(other_db)

    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    with pytest.raises(ArchiveError, match="truncated"):
        await import_into(other, cut)

    newer = rewrite(archive, tmp_path / "newer.tar.gz", manifest={"format_version": 99})
    with pytest.raises(ArchiveError, match="format version 99 is newer"):
        await import_into(other, newer)

    altered = rewrite(
        archive, tmp_path / "altered.tar.gz", member=("clusters", lambda b: b.replace(b"-", b"_"))
    )
    with pytest.raises(ArchiveError, match=f"member {table_member('clusters')} does not match"):
        await import_into(other, altered)

    def bad_row(lines: bytes) -> bytes:
        first, rest = lines.split(b"\n", 1)
        row = json.loads(first)
        row["speakers"] = "two"
        return json.dumps(row).encode() + b"\n" + rest

    invalid = rewrite(
        archive, tmp_path / "invalid.tar.gz", member=("clusters", bad_row), reseal=True
    )
    with pytest.raises(ArchiveError, match="table clusters, line 1: column speakers"):
        await import_into(other, invalid)

    assert await counts(other_db) == unchanged, "nothing half-applied"
    assert not list((tmp_path / "other-media").rglob("*.mp3")), "no media placed"


def rewrite(
    archive: Path,
    out: Path,
    *,
    manifest: dict[str, Any] | None = None,
    member: tuple[str, Callable[[bytes], bytes]] | None = None,
    reseal: bool = False,
) -> Path:
    """A copy of `archive` with its manifest or one table's member changed; `reseal`: the
    manifest's sha256 and row count follow the change (so only the row is wrong)."""
    import hashlib

    with tarfile.open(archive, "r:gz") as tar:
        contents = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    body = json.loads(contents[MANIFEST])
    body.update(manifest or {})
    if member is not None:
        name, change = member
        contents[table_member(name)] = change(contents[table_member(name)])
        if reseal:
            body["tables"][name]["sha256"] = hashlib.sha256(
                contents[table_member(name)]
            ).hexdigest()
    contents[MANIFEST] = json.dumps(body).encode()
    with tarfile.open(out, "w:gz") as tar:
        for name, raw in contents.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return out


async def test_two_provinces_become_one_and_an_emergency_reaches_both_fleets(
    stack: Stack,
    stack_factory: StackFactory,
    other_db: str,
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
    tmp_path: Path,
) -> None:
    """Two instances, each its own database and fleet's register: the first exported and
    retired, imported into the second; one province-wide emergency, and every online
    cluster of both fleets plays it once."""
    first = await stack_factory(database_url=other_db, media_dir=tmp_path / "first-media")
    await small_province(first)
    archive = await export_from(first, tmp_path / "first.tar.gz")
    await first.stop()

    receiving = await small_province(stack, districts={"731": ["26041"]})
    report = await import_into(stack, archive)
    assert not report.conflicts
    assert report.tables["areas"].merged == 1, "province 70 is one"

    provisioning = await stack.client.get("/api/v1/clusters/provisioning")
    from simulator.provisioning import specs_from_json

    specs = [s for s in specs_from_json(provisioning.json()) if s.code.endswith("-01")]
    assert {s.code for s in specs} == {"25216-01", "25195-01", "25231-01"} | {
        s.code for s in receiving.online()
    }
    fleet = fleet_factory(specs)
    await fleet.start()
    clip = await upload(stack, tone_mp3)
    sent = await send(stack, areas=["70"], media_sha256=clip["sha256"])
    await stack.wait_broadcast(
        sent["id"], lambda b: b["counts"].get("played", 0) == len(specs), what="both fleets"
    )
    assert {code: d.play_counts[sent["id"]] for code, d in fleet.devices.items()} == {
        s.code: 1 for s in specs
    }


async def test_an_archive_older_than_aired_renditions_reads_as_its_migration_left_a_database(
    stack: Stack, stack_factory: StackFactory, other_db: str, tone_mp3: Path, tmp_path: Path
) -> None:
    """Archives written before migration 0020 have no `aired_sha256`: an imported play
    then aired what it named, as the migration said of the plays already in a database
    (without it the clusters that heard the clip would not count as holding it)."""
    made = await old_instance(stack, tone_mp3)
    archive = await export_from(stack, tmp_path / "a.tar.gz")

    def without_aired(lines: bytes) -> bytes:
        rows = [json.loads(line) for line in lines.splitlines()]
        assert all("aired_sha256" in row for row in rows), "written by today's export"
        return b"".join(
            json.dumps({k: v for k, v in row.items() if k != "aired_sha256"}).encode() + b"\n"
            for row in rows
        )

    older = rewrite(
        archive, tmp_path / "older.tar.gz", member=("broadcasts", without_aired), reseal=True
    )
    other = await stack_factory(database_url=other_db, media_dir=tmp_path / "other-media")
    report = await import_into(other, older)

    assert report.tables["broadcasts"].added == 1
    engine = create_engine(other_db)
    try:
        async with engine.connect() as connection:
            aired = await connection.scalar(
                select(Broadcast.aired_sha256).where(Broadcast.id == made["broadcast"]["id"])
            )
    finally:
        await engine.dispose()
    assert aired == made["clip"]["sha256"]
