from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from core.schemas import CodeStr, refuse
from devices.schemas import ClusterKind


class FirmwareRead(BaseModel):
    version: str
    sha256: str
    size: int
    model: str | None
    key_id: str = Field(description="the key that signed its manifest")
    notes: str
    uploaded_by: str
    uploaded_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None


class Wave(BaseModel):
    """A wave's size: a share of the rollout's clusters, or a number of them. The last
    wave always takes whatever is left."""

    percent: float | None = Field(default=None, gt=0, le=100)
    count: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_size(self) -> Wave:
        if (self.percent is None) == (self.count is None):
            raise refuse("percent", "give a wave either percent or count")
        return self


class RolloutCreate(BaseModel):
    firmware: str = Field(description="the version to install (uploaded first)")
    areas: list[CodeStr] = Field(default_factory=list, max_length=5000)
    clusters: list[CodeStr] = Field(default_factory=list, max_length=100_000)
    kind: ClusterKind = Field(
        default=ClusterKind.SPEAKER_CLUSTER,
        description="the kind of device the image is for; targeted devices of another are skipped",
    )
    waves: list[Wave] = Field(
        default_factory=lambda: [Wave(percent=5), Wave(percent=25), Wave(percent=100)],
        min_length=1,
        max_length=20,
    )
    per_minute: int = Field(default=60, ge=1, le=100_000, description="installs started")
    abort_failure_pct: int = Field(
        default=10, ge=0, le=100, description="stop when more than this share fails"
    )
    abort_min_finished: int = Field(
        default=5, ge=1, description="installs finished before the share is judged"
    )
    pause_between_waves: bool = Field(
        default=False, description="wait for a person to resume after each wave"
    )

    @model_validator(mode="after")
    def _has_target(self) -> RolloutCreate:
        if not self.areas and not self.clusters:
            raise refuse("areas", "give at least one target in areas or clusters")
        return self


class RolloutClusterRead(BaseModel):
    cluster: str
    wave: int
    state: str  # pending | sent | installing | done | failed | skipped | cancelled
    reason: str | None
    updated_at: datetime


class WaveRead(BaseModel):
    wave: int
    total: int
    counts: dict[str, int]


class RolloutRead(BaseModel):
    id: int
    firmware: str
    state: str  # running | paused | aborted | cancelled | completed
    reason: str
    current_wave: int
    waves: list[WaveRead]
    per_minute: int
    abort_failure_pct: int
    abort_min_finished: int
    pause_between_waves: bool
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    total: int
    counts: dict[str, int]
    clusters: list[RolloutClusterRead] = Field(
        description="clusters, by state then code (limited; see `clusters_limit`)"
    )
