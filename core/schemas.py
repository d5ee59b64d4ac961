"""Schema pieces shared by every domain's API."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

CodeStr = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Limit = Annotated[int, Field(ge=1, le=1000)]
Offset = Annotated[int, Field(ge=0)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ORMModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ImportRowError(BaseModel):
    row: int  # 1-based line number in the file, header is line 1
    field: str | None = None
    error: str


class ImportReport(BaseModel):
    created: int = 0
    updated: int = 0
    errors: list[ImportRowError] = []
