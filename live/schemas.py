from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from core.schemas import CodeStr, refuse
from wire.protocol import CommandClass, SenderLevel


class LiveStatus(StrEnum):
    LIVE = "live"
    ENDING = "ending"  # the officer finished: what was said plays out
    ENDED = "ended"


class LiveStart(BaseModel):
    """Go live: who hears it and at which class (the authority check decides who may)."""

    title: str = Field(default="Phát trực tiếp", min_length=1, max_length=300)
    cls: CommandClass = Field(alias="class")
    level: SenderLevel | None = None
    areas: list[CodeStr] = Field(default_factory=list, max_length=5000)
    clusters: list[CodeStr] = Field(default_factory=list, max_length=100_000)
    drill: bool = False

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _some_targets(self) -> LiveStart:
        if not self.areas and not self.clusters:
            raise refuse("areas", "give at least one target in areas or clusters")
        return self


class LiveRead(BaseModel):
    broadcast_id: str
    title: str
    cls: CommandClass = Field(serialization_alias="class")
    status: LiveStatus
    started_by: str
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    elapsed_s: float
    bulletin_id: str | None = None
    audio_path: str = Field(description="the WebSocket the officer's WebM/Opus goes to")
    officer_connected: bool = False
    listeners: int = Field(default=0, description="clusters receiving the stream now")
    spoken_ms: int | None = None
    recorded_ms: int | None = None
    gaps_ms: int | None = None
    recording_sha256: str | None = None
    recording_problem: str | None = None
    # (the officer's ms, the stream's ms) each time the voice resumed after silence: maps
    # a sample the officer sent to where the clusters heard it (the latency benchmark).
    resumes_ms: list[tuple[float, float]] = []
