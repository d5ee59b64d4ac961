from __future__ import annotations

import csv
import io

from fastapi import UploadFile

from core.errors import InvalidInput

MAX_CSV_BYTES = 20 * 1024 * 1024  # a country's registry export is well under this


async def read_csv_upload(file: UploadFile) -> str:
    raw = await file.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        raise InvalidInput("CSV file is too large", detail={"field": "file"})
    try:
        text = raw.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"CSV file is not UTF-8 (byte {exc.start})", detail={"field": "file"}
        ) from None
    if "\x00" in text:
        raise InvalidInput("CSV file holds a NUL character: not text", detail={"field": "file"})
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for _ in reader:  # read to the end: a malformed file is refused before any row lands
            pass
    except csv.Error as exc:
        raise InvalidInput(
            f"CSV file is malformed at line {reader.line_num}: {exc}", detail={"field": "file"}
        ) from None
    return text
