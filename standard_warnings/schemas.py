from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from core.schemas import ORMModel

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class WarningPut(BaseModel):
    """A warning created or replaced under its id."""

    title: str = Field(min_length=1, max_length=300, examples=["Lũ: sơ tán ngay"])
    media_sha256: Sha256 = Field(description="an audio file uploaded to /api/v1/media")


class WarningRead(ORMModel):
    id: str
    title: str
    media_sha256: str
    created_at: datetime
    updated_at: datetime
    updated_by: str
