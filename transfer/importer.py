"""`broadcast import`: another instance's archive into this register, in one transaction.

Checked whole before anything is written (the manifest's format and schema, every
member's size, sha256 and row count, every row's columns, every reference), then applied
table by table, parents first: integer ids are given by this database and every
reference follows them; natural keys decide what is the same thing (transfer/tables.py).
Nothing here is ever overwritten: a conflict is reported and skipped, and so is every row
that depends on it. A dry run does all of it and rolls back."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, and_, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from audit.models import AuditEvent, AuditOutcome
from audit.service import event as audit_event
from core.clock import Clock
from core.database import create_session_maker, session_scope
from core.settings import Settings
from devices import broker_auth
from media.storage import media_path, original_path, temp_file
from transfer.archive import (
    MANIFEST,
    ArchiveError,
    Manifest,
    RowError,
    decode_row,
    media_member,
    table_member,
)
from transfer.schema import database_revision, head_revision, known_revision
from transfer.tables import POLICIES, Identity, Policy, exported_tables, filled_in

CHUNK_ROWS = 500  # rows looked up and inserted per statement
READ_BYTES = 1024 * 1024
# Content, not owners: a row that names a file already here is not history that came with
# it (a new bulletin may use a clip both provinces aired).
CONTENT_TABLES = {"media_files", "media_originals", "firmware_images"}
DAMAGED = (tarfile.TarError, EOFError, zlib.error, OSError)


@dataclass
class TableReport:
    in_archive: int = 0
    added: int = 0
    merged: int = 0  # the same unit as one here: its rows attach to it
    present: int = 0  # already here, the same (a UUID or content seen before)
    conflicts: int = 0
    skipped: int = 0  # depend on a row not added

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ConflictNote:
    table: str
    key: str
    reason: str


@dataclass
class ImportReport:
    archive: Path
    dry_run: bool
    source: dict[str, str]
    tables: dict[str, TableReport] = field(default_factory=dict)
    conflicts: list[ConflictNote] = field(default_factory=list)
    skipped_because: dict[str, Counter[str]] = field(default_factory=dict)
    media_written: int = 0

    def rows(self) -> list[tuple[str, ...]]:
        """(table, in archive, added, merged, present, conflicts, skipped), one a table."""
        return [
            (name, *(str(v) for v in report.as_dict().values()))
            for name, report in self.tables.items()
            if report.in_archive
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "archive": str(self.archive),
            "dry_run": self.dry_run,
            "source": self.source,
            "tables": {name: report.as_dict() for name, report in self.tables.items()},
            "conflicts": [c.__dict__ for c in self.conflicts],
            "skipped_because": {k: dict(v) for k, v in self.skipped_because.items()},
            "media_written": self.media_written,
        }


async def import_archive(
    engine: AsyncEngine,
    settings: Settings,
    path: Path,
    clock: Clock,
    *,
    dry_run: bool = False,
    actor: str = "cli",
) -> ImportReport:
    """Check the archive, then apply it in one transaction (rolled back on a dry run or
    any error; the media files it placed are removed again then)."""
    manifest = await asyncio.to_thread(check_archive, path)
    report = ImportReport(archive=path, dry_run=dry_run, source=manifest.source)
    placed: list[Path] = []
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            try:
                revision = await database_revision(connection)
                if revision != head_revision():
                    raise ArchiveError(
                        f"this database is at schema revision {revision}, not "
                        f"{head_revision()}: run `broadcast db upgrade` first"
                    )
                needed = await _apply(connection, path, report)
                if not dry_run:
                    placed = await asyncio.to_thread(_place_media, path, needed, settings)
                    report.media_written = len(placed)
                await connection.execute(
                    insert(AuditEvent.__table__),  # type: ignore[arg-type]
                    [_audited(report, actor, clock)],
                )
            except BaseException:
                await transaction.rollback()
                raise
            if dry_run:
                await transaction.rollback()
            else:
                await transaction.commit()
    except BaseException:
        for written in placed:
            written.unlink(missing_ok=True)
        raise
    if not dry_run and report.tables["clusters"].added:
        # The imported clusters connect to this broker with the passwords they hold.
        async with session_scope(create_session_maker(engine)) as session:
            await broker_auth.sync(session, settings, starting=True)
    return report


def _audited(report: ImportReport, actor: str, clock: Clock) -> dict[str, Any]:
    entry = audit_event(
        at=clock.now(),
        actor=actor,
        action="import archive",
        outcome=AuditOutcome.OK,
        target=report.archive.name,
        detail={
            "source": report.source,
            "added": {n: r.added for n, r in report.tables.items() if r.added},
            "conflicts": len(report.conflicts),
        },
    )
    return {c.name: getattr(entry, c.key) for c in AuditEvent.__table__.columns if c.name != "id"}


# -- checking the archive whole, before anything is written --------------------------


@contextlib.contextmanager
def _open(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            yield tar
    except FileNotFoundError:
        raise ArchiveError(f"no archive at {path}") from None
    except (tarfile.ReadError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{path.name} is damaged or truncated ({exc})") from None


def check_archive(path: Path) -> Manifest:
    """The archive's manifest, once every member has been read and found as it says."""
    tables = {t.name: t for t in exported_tables()}
    with _open(path) as tar:
        members = iter(tar)
        current = MANIFEST
        try:
            first = next(members, None)
            if first is None or first.name != MANIFEST:
                raise ArchiveError(f"{path.name} does not start with {MANIFEST}")
            manifest = Manifest.from_json(_read(tar, first))
            if not known_revision(manifest.schema_revision):
                raise ArchiveError(
                    f"archive written at schema revision {manifest.schema_revision}, which "
                    "this release does not know (a newer one wrote it): import it with that"
                )
            unknown = manifest.tables.keys() - tables.keys()
            if unknown:
                raise ArchiveError(f"archive holds unknown table(s) {', '.join(sorted(unknown))}")
            members_of = {entry["member"]: name for name, entry in manifest.tables.items()}
            keys: dict[str, set[Any]] = {}
            seen: set[str] = set()
            for member in members:
                current = member.name
                if member.name in members_of:
                    name = members_of[member.name]
                    _check_table(tar, member, tables[name], manifest.tables[name], keys)
                elif member.name.startswith("media/"):
                    _check_media(tar, member, manifest)
                else:
                    raise ArchiveError(f"member {member.name} is not in the manifest")
                seen.add(member.name)
        except DAMAGED as exc:
            raise ArchiveError(
                f"{path.name} is truncated or damaged at member {current} ({exc})"
            ) from None
    expected = set(members_of) | {media_member(sha) for sha in manifest.media}
    missing = sorted(expected - seen)
    if missing:
        raise ArchiveError(
            f"member {missing[0]} missing ({len(missing)} in all): the archive is truncated"
        )
    return manifest


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(f"member {member.name} is not a file")
    return handle.read()


def _check_table(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    table: Table,
    entry: dict[str, Any],
    keys: dict[str, set[Any]],
) -> None:
    digest = hashlib.sha256()
    rows = 0
    pk = _single_pk(table)
    own: set[Any] = keys.setdefault(table.name, set())
    references = _references(table)
    problem: str | None = None  # the first row found wrong
    for rows, line in enumerate(_lines(tar, member), start=1):
        digest.update(line)
        if problem is not None:
            continue  # read on: a member damaged on the way is named as such
        try:
            values = decode_row(table, line)
            for column, referred in references:
                value = values.get(column)
                if value is not None and value not in keys.get(referred, ()):
                    if referred == table.name and value not in own:
                        raise RowError(f"column {column}: {value!r} is not an earlier row")
                    if referred != table.name:
                        raise RowError(
                            f"column {column}: {referred} {value!r} is not in the archive"
                        )
        except RowError as exc:
            problem = f"table {table.name}, line {rows}: {exc}"
            continue
        if pk is not None:
            own.add(values[pk])
    if rows != entry.get("rows") or digest.hexdigest() != entry.get("sha256"):
        raise ArchiveError(
            f"member {member.name} does not match the manifest "
            f"({rows} rows, {entry.get('rows')} listed; or its sha256 differs)"
        )
    if problem is not None:
        raise ArchiveError(problem)


def _check_media(tar: tarfile.TarFile, member: tarfile.TarInfo, manifest: Manifest) -> None:
    sha256 = member.name.removeprefix("media/")
    if sha256 not in manifest.media:
        raise ArchiveError(f"member {member.name} is not in the manifest")
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(f"member {member.name} is not a file")
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(READ_BYTES):
        digest.update(chunk)
        size += len(chunk)
    if digest.hexdigest() != sha256 or size != manifest.media[sha256]:
        raise ArchiveError(f"member {member.name}: its bytes do not match its sha256 or size")


def _lines(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
    handle: IO[bytes] | None = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(f"member {member.name} is not a file")
    yield from handle


def _single_pk(table: Table) -> str | None:
    columns = list(table.primary_key.columns)
    return columns[0].name if len(columns) == 1 else None


def _references(table: Table) -> list[tuple[str, str]]:
    """(column, referred table) of every foreign key; each refers to a primary key."""
    found = []
    for fk in table.foreign_keys:
        assert fk.column.primary_key, f"{fk} refers to a column that is not a primary key"
        found.append((fk.parent.name, fk.column.table.name))
    return found


# -- applying it ------------------------------------------------------------------------


@dataclass
class _Resolved:
    """Where the archive's rows of one table went: old key -> key here, or why not."""

    to: dict[Any, Any] = field(default_factory=dict)
    present: set[Any] = field(default_factory=set)
    dropped: dict[Any, str] = field(default_factory=dict)


async def _apply(connection: AsyncConnection, path: Path, report: ImportReport) -> set[str]:
    """Write every table; the sha256 of each media file now needed on disk."""
    resolved: dict[str, _Resolved] = {}
    needed: set[str] = set()
    with _open(path) as tar:
        for table in exported_tables():
            report.tables[table.name] = TableReport()
            resolved[table.name] = _Resolved()
            try:
                member = tar.getmember(table_member(table.name))
            except KeyError:
                continue  # an archive of an older schema, before this table existed
            writer = _TableWriter(connection, table, report, resolved)
            for line in _lines(tar, member):
                await writer.take(filled_in(table.name, decode_row(table, line)))
            await writer.flush()
            needed |= writer.media
    return needed


class _TableWriter:
    def __init__(
        self,
        connection: AsyncConnection,
        table: Table,
        report: ImportReport,
        resolved: dict[str, _Resolved],
    ) -> None:
        self.connection = connection
        self.table = table
        self.policy: Policy = POLICIES[table.name]
        self.counts = report.tables[table.name]
        self.report = report
        self.resolved = resolved
        self.mine = resolved[table.name]
        self.references = _references(table)
        self.pk = _single_pk(table)
        pk_column = table.c[self.pk] if self.pk else None
        # An integer id this database gives (not one that is also a reference).
        self.surrogate = (
            pk_column is not None
            and pk_column.autoincrement in (True, "auto")
            and not pk_column.foreign_keys
            and pk_column.type.python_type is int
        )
        self.pending: list[tuple[Any, dict[str, Any]]] = []  # (old key, values)
        self.pending_keys: set[Any] = set()
        self.media: set[str] = set()

    def _old_key(self, values: dict[str, Any]) -> Any:
        if self.pk is not None:
            return values[self.pk]
        return tuple(values[c.name] for c in self.table.primary_key.columns)

    def _label(self, values: dict[str, Any]) -> str:
        columns = (self.policy.label,) if self.policy.label else self.policy.key
        if not columns:
            columns = tuple(c.name for c in self.table.primary_key.columns)
        return "/".join(str(values.get(c)) for c in columns)

    async def take(self, values: dict[str, Any]) -> None:
        self.counts.in_archive += 1
        old_key = self._old_key(values)
        for column, referred in self.references:
            value = values.get(column)
            if value is None:
                continue
            if referred == self.table.name and value in self.pending_keys:
                await self.flush()  # its parent first, to know its id here
            parent = self.resolved[referred]
            if value in parent.dropped:
                self._skip(old_key, parent.dropped[value])
                return
            if (
                value in parent.present
                and referred not in CONTENT_TABLES
                and self.policy.identity is Identity.NEW
            ):
                self.mine.present.add(old_key)
                self.mine.dropped[old_key] = f"came with {referred} {value}, already here"
                self.counts.present += 1
                return
            values[column] = parent.to[value]
        for column, value in self.policy.reset:
            values[column] = value
        self.pending.append((old_key, values))
        self.pending_keys.add(old_key)
        if len(self.pending) >= CHUNK_ROWS:
            await self.flush()

    def _skip(self, old_key: Any, reason: str) -> None:
        self.mine.dropped[old_key] = reason
        self.counts.skipped += 1
        self.report.skipped_because.setdefault(self.table.name, Counter())[reason] += 1

    def _conflict(self, old_key: Any, values: dict[str, Any], why: str) -> None:
        label = self._label(values)
        self.mine.dropped[old_key] = f"{self.table.name} {label}: {why}"
        self.counts.conflicts += 1
        self.report.conflicts.append(ConflictNote(self.table.name, label, why))

    async def flush(self) -> None:
        batch, self.pending, self.pending_keys = self.pending, [], set()
        if not batch:
            return
        existing = await self._existing([values for _, values in batch])
        new: list[tuple[Any, dict[str, Any]]] = []
        for old_key, values in batch:
            here = existing.get(self._natural(values))
            if here is None:
                new.append((old_key, values))
                continue
            identity = self.policy.identity
            differ = [c for c in self.policy.same if here[c] != values[c]]
            here_key = here[self.pk] if self.pk else old_key
            if identity is Identity.CONFLICT:
                self._conflict(old_key, values, "already registered here; not overwritten")
            elif differ:
                shown = ", ".join(
                    f"{c} {here[c]!r} here, {values[c]!r} in the archive" for c in differ
                )
                self._conflict(old_key, values, f"differs ({shown}); not overwritten")
            elif identity is Identity.MERGED:
                self.mine.to[old_key] = here_key
                self.counts.merged += 1
            else:
                self.mine.to[old_key] = here_key
                self.mine.present.add(old_key)
                self.counts.present += 1
        await self._insert(new)

    def _natural(self, values: dict[str, Any]) -> Any:
        if self.policy.identity is Identity.NEW:
            return None
        columns = self.policy.key or tuple(c.name for c in self.table.primary_key.columns)
        return tuple(values[c] for c in columns)

    async def _existing(self, batch: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
        """The rows here that share a natural key with one of `batch`, by that key."""
        if self.policy.identity is Identity.NEW:
            return {}
        columns = self.policy.key or tuple(c.name for c in self.table.primary_key.columns)
        wanted = {tuple(values[c] for c in columns) for values in batch}
        key = [self.table.c[c] for c in columns]
        if len(key) == 1:
            condition = key[0].in_([k[0] for k in wanted])
        else:
            condition = tuple_(*key).in_(list(wanted))
        rows = (await self.connection.execute(select(self.table).where(and_(condition)))).all()
        return {tuple(row._mapping[c] for c in key): dict(row._mapping) for row in rows}

    async def _insert(self, new: list[tuple[Any, dict[str, Any]]]) -> None:
        if not new:
            return
        if self.surrogate:
            assert self.pk is not None
            pk = self.table.c[self.pk]
            rows = [{k: v for k, v in values.items() if k != self.pk} for _, values in new]
            statement = insert(self.table).returning(pk, sort_by_parameter_order=True)
            ids = (await self.connection.execute(statement, rows)).scalars().all()
            for (old_key, _), new_id in zip(new, ids, strict=True):
                self.mine.to[old_key] = new_id
        else:
            await self.connection.execute(insert(self.table), [values for _, values in new])
            for old_key, values in new:
                self.mine.to[old_key] = self._old_key(values)
        self.counts.added += len(new)
        if self.table.name in CONTENT_TABLES:
            self.media |= {f"{self.table.name}:{values['sha256']}" for _, values in new}


def _place_media(path: Path, needed: set[str], settings: Settings) -> list[Path]:
    """Put the media files the new rows name in place (if not there already, from the
    archive); the paths written, for removal if the transaction fails after all."""
    places: dict[str, list[Path]] = {}
    for entry in needed:
        table, sha256 = entry.split(":", 1)
        where = media_path if table != "media_originals" else original_path
        target = where(settings.media_dir, sha256)
        if not target.exists():
            places.setdefault(sha256, []).append(target)
    written: list[Path] = []
    if not places:
        return written
    with _open(path) as tar:
        for sha256, targets in places.items():
            try:
                member = tar.getmember(media_member(sha256))
            except KeyError:
                continue  # missing at the source too (the manifest lists it)
            handle = tar.extractfile(member)
            assert handle is not None  # checked before
            spooled = temp_file(settings.media_dir)
            with spooled.open("wb") as out:
                while chunk := handle.read(READ_BYTES):
                    out.write(chunk)
            for target in targets[1:]:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(spooled, target)
                written.append(target)
            targets[0].parent.mkdir(parents=True, exist_ok=True)
            os.replace(spooled, targets[0])  # never a half-written file under its name
            written.append(targets[0])
    return written
