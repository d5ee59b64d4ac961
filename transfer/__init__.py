"""One province's register, history and media from one instance into another
(docs/archive.md): `export` writes the archive, `import_archive` takes it in."""

from transfer.archive import FORMAT_VERSION, ArchiveError
from transfer.export import ExportSummary, export
from transfer.importer import ImportReport, import_archive

__all__ = [
    "FORMAT_VERSION",
    "ArchiveError",
    "ExportSummary",
    "ImportReport",
    "export",
    "import_archive",
]
