from __future__ import annotations

from fastapi import UploadFile

from core.errors import InvalidInput

MAX_CSV_BYTES = 20 * 1024 * 1024  # a country's registry export is well under this


async def read_csv_upload(file: UploadFile) -> str:
    raw = await file.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        raise InvalidInput("CSV file is too large", detail={"field": "file"})
    try:
        return raw.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"CSV file is not UTF-8 (byte {exc.start})", detail={"field": "file"}
        ) from None
