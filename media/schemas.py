from __future__ import annotations

from pydantic import BaseModel, Field


class OriginalRead(BaseModel):
    sha256: str
    size: int
    container: str
    duration_ms: int
    loudness_lufs: float


class RenditionRead(BaseModel):
    profile: str
    sha256: str
    size: int
    format: str
    duration_ms: int


class MediaRead(BaseModel):
    """A playable item by the sha256 of its default rendition (what broadcasts name)."""

    sha256: str
    kind: str
    size: int
    format: str
    content_type: str
    duration_ms: int
    original_name: str | None
    # For people (the console's preview); clusters get signed URLs in each command.
    url: str
    profile: str | None = None
    original: OriginalRead | None = None
    renditions: list[RenditionRead] = []


class SpeechCreate(BaseModel):
    """Text to be read aloud by the text-to-speech engine."""

    text: str = Field(min_length=1, max_length=5000)
    language: str = Field(default="vi", max_length=32)
