"""The archive's layout and how a row is written and read back (docs/archive.md).

An archive is a gzip-compressed tar: `manifest.json` first, then one JSON Lines member per
table (`tables/<name>.jsonl`, parents before children), then the media files named by
their sha256 (`media/<sha256>`). The manifest gives every member's size, sha256 and (for
tables) row count, so a truncated or altered archive is refused before anything is
written, naming the member."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
)

from core.database import UTCDateTime
from core.errors import InvalidInput

FORMAT = "loa-broadcast-archive"
# 1: the first. Raise it when a reader of the previous version would misread an archive
# (a new member kind, a changed encoding); a new table or column is the schema revision's
# business, not the format's.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TABLES_DIR = "tables/"
MEDIA_DIR = "media/"


class ArchiveError(InvalidInput):
    """An archive that cannot be imported as it is: nothing was written."""


def table_member(name: str) -> str:
    return f"{TABLES_DIR}{name}.jsonl"


def media_member(sha256: str) -> str:
    return f"{MEDIA_DIR}{sha256}"


@dataclass
class Manifest:
    format_version: int
    schema_revision: str
    exported_at: str
    source: dict[str, str]
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # member, rows, sha256
    media: dict[str, int] = field(default_factory=dict)  # sha256 -> size
    missing_media: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "format_version": self.format_version,
            "schema_revision": self.schema_revision,
            "exported_at": self.exported_at,
            "source": self.source,
            "tables": self.tables,
            "media": self.media,
            "missing_media": self.missing_media,
        }
        return json.dumps(body, ensure_ascii=False, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ArchiveError(f"{MANIFEST} is not JSON ({exc})") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ArchiveError(f"{MANIFEST} does not describe a {FORMAT}")
        version = body.get("format_version")
        if not isinstance(version, int):
            raise ArchiveError(f"{MANIFEST} has no format_version")
        if version > FORMAT_VERSION:
            raise ArchiveError(
                f"archive format version {version} is newer than this software reads "
                f"({FORMAT_VERSION}): import it with a newer release"
            )
        try:
            return cls(
                format_version=version,
                schema_revision=str(body["schema_revision"]),
                exported_at=str(body["exported_at"]),
                source=dict(body["source"]),
                tables=dict(body["tables"]),
                media={str(k): int(v) for k, v in body["media"].items()},
                missing_media=list(body.get("missing_media", [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArchiveError(f"{MANIFEST} is incomplete ({exc!r})") from None


def encode_row(table: Table, row: Any) -> bytes:
    """One row as one JSON line, keyed by column name (dates and times in ISO 8601)."""
    values = {column.name: _encode(row._mapping[column]) for column in table.columns}
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class RowError(ValueError):
    pass


def decode_row(table: Table, line: bytes) -> dict[str, Any]:
    """A JSON line back to the column values the table takes; RowError says what is wrong."""
    try:
        raw = json.loads(line)
    except ValueError as exc:
        raise RowError(f"not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise RowError("not an object")
    unknown = raw.keys() - set(table.columns.keys())
    if unknown:
        raise RowError(f"unknown column(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.name not in raw:
            if _has_default(column):
                continue  # an archive from an older schema: this database fills it in
            raise RowError(f"column {column.name} missing")
        values[column.name] = _decode(column, raw[column.name])
    return values


def _has_default(column: Column[Any]) -> bool:
    return (
        column.nullable
        or column.default is not None
        or column.server_default is not None
        or (column.primary_key and column.autoincrement is not False)
    )


def _decode(column: Column[Any], value: Any) -> Any:
    if value is None:
        if not column.nullable:
            raise RowError(f"column {column.name} is null")
        return None
    kind = column.type
    try:
        if isinstance(kind, UTCDateTime):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise RowError(f"column {column.name}: a time without its zone")
            return parsed
        if isinstance(kind, DateTime):
            return datetime.fromisoformat(value)
        if isinstance(kind, Date):
            return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise RowError(f"column {column.name}: {value!r} is not a date or time") from None
    if isinstance(kind, JSON):
        return value
    if isinstance(kind, Boolean):
        return _typed(column, value, bool)
    if isinstance(kind, Integer | BigInteger):
        if isinstance(value, bool):
            raise RowError(f"column {column.name}: {value!r} is not a whole number")
        return _typed(column, value, int)
    if isinstance(kind, Float):
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return _typed(column, value, float)
    if isinstance(kind, String | Text):
        text = _typed(column, value, str)
        if kind.length is not None and len(text) > kind.length:
            raise RowError(f"column {column.name}: longer than {kind.length} characters")
        return text
    return value


def _typed[T](column: Column[Any], value: Any, kind: type[T]) -> T:
    if not isinstance(value, kind):
        raise RowError(f"column {column.name}: {value!r} is not {kind.__name__}")
    return value
