"""Schema pieces shared by every domain's API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

CodeStr = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Limit = Annotated[int, Field(ge=1, le=1000)]
# Bounded like the columns they reach: a number past 64 bits answered 500 from SQLite's
# driver (issue 20), so paging and ids stop where the database does.
Offset = Annotated[int, Field(ge=0, le=2**31 - 1)]
IntId = Annotated[int, Field(ge=1, le=2**31 - 1)]  # an INTEGER primary key
BigId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # a BIGINT primary key

# Text that may hold anything but NUL (not text; PostgreSQL cannot store it): for form
# fields, which the request gate's NUL check (JSON and the address) does not read.
NO_NUL = r"^[^\x00]*$"


def file_name(name: str | None) -> str | None:
    """An uploaded file's name as the record keeps it: no NUL, at most 255 characters."""
    return (name or "").replace("\x00", "")[:255] or None


# Days and instants a request may name: this system's era. Year 1 or 9999 overflowed
# date arithmetic (a calendar from 0001-01-01 in local time is before datetime's minimum).
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
Day = Annotated[date, Field(ge=EARLIEST, le=LATEST)]


def _in_era(value: datetime) -> datetime:
    if not EARLIEST.year <= value.year <= LATEST.year:
        raise ValueError(f"must fall between {EARLIEST.year} and {LATEST.year}")
    return value


Instant = Annotated[datetime, AfterValidator(_in_era)]


class Page[T](BaseModel):
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


def refuse(field: str, message: str) -> PydanticCustomError:
    """A model-level rule's refusal that names the field a person should change (a rule
    over several fields otherwise reaches the client as field "", app/errors.py)."""
    return PydanticCustomError(
        "refused", message.replace("{", "(").replace("}", ")"), {"field": field}
    )
