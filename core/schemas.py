"""Schema pieces shared by every domain's API."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

T = TypeVar("T")

CodeStr = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Limit = Annotated[int, Field(ge=1, le=1000)]
# Bounded like the columns they reach: a number past 64 bits answered 500 from SQLite's
# driver (issue 20), so paging and ids stop where the database does.
Offset = Annotated[int, Field(ge=0, le=2**31 - 1)]
IntId = Annotated[int, Field(ge=1, le=2**31 - 1)]  # an INTEGER primary key
BigId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # a BIGINT primary key


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


def not_null(*fields: str) -> classmethod:  # type: ignore[type-arg]
    """For an update schema: these fields may be left out (unchanged), never set to null
    (their columns hold a value; null answered 500 from the database, issue 20)."""

    def check(cls: type, value: object, info: ValidationInfo) -> object:
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null: leave it out to keep it")
        return value

    return field_validator(*fields, mode="before")(classmethod(check))
