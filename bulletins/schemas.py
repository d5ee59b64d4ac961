from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, Field, model_validator

from bulletins.workflow import Status
from core.schemas import CodeStr, refuse
from wire.protocol import CommandClass

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Content(BaseModel):
    @model_validator(mode="after")
    def _window(self) -> _Content:
        start, end = getattr(self, "valid_from", None), getattr(self, "valid_until", None)
        for value, name in ((start, "valid_from"), (end, "valid_until")):
            if value is not None and value.tzinfo is None:
                raise refuse(name, f"{name} must carry a time zone")
        if start and end and end <= start:
            raise refuse("valid_until", "valid_until must be after valid_from")
        return self


class BulletinCreate(_Content):
    title: str = Field(min_length=1, max_length=300)
    topic: str = Field(default="general", min_length=1, max_length=64)
    language: str = Field(default="vi", min_length=2, max_length=32)
    text: str | None = Field(default=None, max_length=5000)
    media_sha256: Sha256 | None = None
    image_sha256: Sha256 | None = None
    stream_url: AnyHttpUrl | None = None
    cls: CommandClass = Field(default=CommandClass.NORMAL, alias="class")
    area: CodeStr | None = Field(default=None, description="owner area; default the author's")
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _something_to_air(self) -> BulletinCreate:
        if self.media_sha256 is None and self.stream_url is None and not (self.text or "").strip():
            raise refuse("text", "give text, media_sha256 or stream_url")
        if self.media_sha256 is not None and self.stream_url is not None:
            raise refuse("stream_url", "give media_sha256 or stream_url, not both")
        return self


class BulletinUpdate(_Content):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    topic: str | None = Field(default=None, min_length=1, max_length=64)
    text: str | None = Field(default=None, max_length=5000)
    media_sha256: Sha256 | None = None
    image_sha256: Sha256 | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class TransitionRequest(BaseModel):
    note: str | None = Field(default=None, max_length=500)


class BulletinEventRead(BaseModel):
    action: str
    from_status: str | None
    to_status: str
    actor: str
    role: str
    at: datetime
    note: str | None


class BulletinRead(BaseModel):
    id: str
    title: str
    topic: str
    language: str
    text: str | None
    media_sha256: str | None
    image_sha256: str | None
    stream_url: str | None
    spoken: bool
    cls: CommandClass = Field(serialization_alias="class")
    area_code: str
    author: str
    status: Status
    valid_from: datetime | None
    valid_until: datetime | None
    review_note: str | None
    aired_before_review: bool
    aired_live: bool = False  # spoken live: its audio is the session's record
    created_at: datetime
    updated_at: datetime
    history: list[BulletinEventRead] = []


class DistributeRequest(BaseModel):
    """Send an approved bulletin down to the communes under some areas (Circular 39)."""

    areas: list[CodeStr] = Field(min_length=1, max_length=5000)
    cls: CommandClass = Field(default=CommandClass.NORMAL, alias="class")
    expires_at: datetime | None = None

    model_config = {"populate_by_name": True}


class InboxItemRead(BaseModel):
    id: int
    bulletin: BulletinRead
    area_code: str
    cls: CommandClass = Field(serialization_alias="class")
    sender: str
    sender_level: str
    received_at: datetime
    expires_at: datetime | None
    status: str
    handled_by: str | None
    handled_at: datetime | None
    note: str | None
    broadcast_id: str | None


class DistributeResult(BaseModel):
    communes: int
    inbox_items: int
    broadcast_id: str | None = None  # priority and emergency go on air at once


class InboxDecision(BaseModel):
    note: str | None = Field(default=None, max_length=500)
