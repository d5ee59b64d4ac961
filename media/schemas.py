from __future__ import annotations

from pydantic import BaseModel


class MediaRead(BaseModel):
    sha256: str
    size: int
    format: str
    content_type: str
    duration_ms: int
    original_name: str | None
    url: str
