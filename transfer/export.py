"""`broadcast export`: a province's register, history and media as one archive."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.clock import Clock
from core.settings import Settings
from media.storage import media_path, original_path
from transfer.archive import (
    FORMAT_VERSION,
    MANIFEST,
    Manifest,
    encode_row,
    media_member,
    table_member,
)
from transfer.schema import database_revision
from transfer.tables import POLICIES, exported_tables

log = logging.getLogger(__name__)

# gzip's level 6: the tables (JSON) shrink about tenfold at a third of level 9's time;
# the audio is already compressed either way.
COMPRESS_LEVEL = 6
STREAM_ROWS = 1000  # rows fetched per round trip while a table is written out
# Media named by these columns; the originals have a place of their own on disk.
MEDIA_COLUMNS = {"media_files": "sha256", "firmware_images": "sha256"}
ORIGINALS = "media_originals"


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    rows: dict[str, int]
    media_files: int
    missing_media: list[str]
    size: int


async def export(engine: AsyncEngine, settings: Settings, out: Path, clock: Clock) -> ExportSummary:
    """Write every exported table and the media they name to `out`, read in one snapshot
    of the database (all tables as of one moment, while the system keeps running)."""
    tables = exported_tables()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as spool:
        spool_dir = Path(spool)
        async with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection = await connection.execution_options(isolation_level="REPEATABLE READ")
            async with connection.begin():
                revision = await database_revision(connection)
                manifest = Manifest(
                    format_version=FORMAT_VERSION,
                    schema_revision=revision,
                    exported_at=clock.now().isoformat(),
                    source={
                        "public_base_url": settings.public_base_url,
                        "signing_key_id": settings.signer.kid,
                        "signing_public_key": settings.signer.public_text,
                        "database": connection.dialect.name,
                    },
                )
                places: dict[str, Path] = {}
                for table in tables:
                    await _write_table(connection, table, spool_dir, manifest, places, settings)
        partial = out.with_name(f".{out.name}.partial")
        size = await asyncio.to_thread(_assemble, partial, manifest, spool_dir, tables, places)
        os.replace(partial, out)  # a half-written archive never has the name asked for
    return ExportSummary(
        path=out,
        rows={name: entry["rows"] for name, entry in manifest.tables.items()},
        media_files=len(manifest.media),
        missing_media=manifest.missing_media,
        size=size,
    )


async def _write_table(
    connection: AsyncConnection,
    table: Table,
    spool_dir: Path,
    manifest: Manifest,
    places: dict[str, Path],
    settings: Settings,
) -> None:
    order = POLICIES[table.name].order or tuple(c.name for c in table.primary_key.columns)
    query = select(table).order_by(*(table.c[name] for name in order))
    member = table_member(table.name)
    digest = hashlib.sha256()
    rows = 0
    media_column = MEDIA_COLUMNS.get(table.name)
    with (spool_dir / f"{table.name}.jsonl").open("wb") as out:
        result = await connection.stream(query.execution_options(yield_per=STREAM_ROWS))
        async for row in result:
            line = encode_row(table, row)
            out.write(line)
            digest.update(line)
            rows += 1
            if media_column is not None:
                sha256 = row._mapping[table.c[media_column]]
                places.setdefault(sha256, media_path(settings.media_dir, sha256))
            elif table.name == ORIGINALS:
                sha256 = row._mapping[table.c.sha256]
                places.setdefault(sha256, original_path(settings.media_dir, sha256))
    manifest.tables[table.name] = {"member": member, "rows": rows, "sha256": digest.hexdigest()}


def _assemble(
    path: Path, manifest: Manifest, spool_dir: Path, tables: list[Table], places: dict[str, Path]
) -> int:
    """Write the archive at `path`; its size."""
    for sha256, place in sorted(places.items()):
        if place.exists():
            manifest.media[sha256] = place.stat().st_size
        else:
            manifest.missing_media.append(sha256)
    if manifest.missing_media:
        log.warning(
            "export: %d media file(s) named in the register are not on disk: %s",
            len(manifest.missing_media),
            ", ".join(manifest.missing_media[:5]),
        )
    with tarfile.open(path, "w:gz", compresslevel=COMPRESS_LEVEL) as tar:
        spooled = spool_dir / MANIFEST
        spooled.write_bytes(manifest.to_json())
        tar.add(spooled, arcname=MANIFEST)
        for table in tables:
            tar.add(spool_dir / f"{table.name}.jsonl", arcname=table_member(table.name))
        for sha256 in manifest.media:
            tar.add(places[sha256], arcname=media_member(sha256))
    return path.stat().st_size
