"""`broadcast export` and `broadcast import` (transfer/): the process around the package,
and the import's report as a table."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from core.clock import SystemClock
from core.database import create_engine
from core.settings import get_settings
from transfer import ImportReport, export, import_archive

SHOWN_CONFLICTS = 50  # a whole fleet imported twice would be 1,664 lines


def run_export(out: Path, database_url: str | None) -> str:
    """Write the archive; a line saying what it holds."""
    settings = get_settings()

    async def main() -> str:
        engine = create_engine(database_url or settings.database_url)
        started = time.monotonic()
        try:
            summary = await export(engine, settings, out, SystemClock())
        finally:
            await engine.dispose()
        rows = sum(summary.rows.values())
        missing = f", {len(summary.missing_media)} missing on disk" if summary.missing_media else ""
        return (
            f"{out}: {rows} rows in {len(summary.rows)} tables, {summary.media_files} media "
            f"files{missing}; {summary.size / 1e6:.1f} MB in {time.monotonic() - started:.1f} s"
        )

    return asyncio.run(main())


def run_import(archive: Path, database_url: str | None, *, dry_run: bool) -> ImportReport:
    settings = get_settings()

    async def main() -> ImportReport:
        engine = create_engine(database_url or settings.database_url)
        try:
            return await import_archive(engine, settings, archive, SystemClock(), dry_run=dry_run)
        finally:
            await engine.dispose()

    started = time.monotonic()
    report = asyncio.run(main())
    show(report, Console(), seconds=time.monotonic() - started)
    return report


def show(report: ImportReport, console: Console, *, seconds: float) -> None:
    source = report.source.get("public_base_url", "?")
    table = Table(
        "table",
        "in archive",
        "added",
        "merged",
        "present",
        "conflicts",
        "skipped",
        title=f"{report.archive.name} (from {source})",
    )
    for row in report.rows():
        table.add_row(*row)
    console.print(table)
    for conflict in report.conflicts[:SHOWN_CONFLICTS]:
        console.print(f"conflict: {conflict.table} {conflict.key}: {conflict.reason}")
    if len(report.conflicts) > SHOWN_CONFLICTS:
        console.print(f"… and {len(report.conflicts) - SHOWN_CONFLICTS} more conflicts")
    for name, reasons in report.skipped_because.items():
        for reason, count in reasons.most_common():
            console.print(f"skipped: {count} {name}, because {reason}")
    if report.dry_run:
        console.print("dry run: nothing changed")
    else:
        console.print(f"imported in {seconds:.1f} s; {report.media_written} media files written")
