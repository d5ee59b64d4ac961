from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from core.schemas import CodeStr, ORMModel, not_null


class AreaCreate(BaseModel):
    code: CodeStr
    name: str = Field(min_length=1, max_length=200)
    level: str = Field(min_length=1, max_length=32, examples=["province", "commune"])
    parent_code: CodeStr | None = None


class AreaUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    level: str | None = Field(default=None, min_length=1, max_length=32)
    parent_code: CodeStr | None = None
    _not_null = not_null("name", "level")


class AreaRead(ORMModel):
    code: str
    name: str
    level: str
    parent_code: str | None
    path: str
    depth: int
    created_at: datetime
    # A reorganisation's marks (reorganisation/): ended on that day, taken over by these;
    # or took its present form on that day.
    dissolved_on: date | None = None
    successors: list[str] | None = None
    since: date | None = None
