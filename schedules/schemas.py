from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from core.schemas import CodeStr, not_null, refuse
from wire.protocol import CommandClass, SenderLevel


class ScheduleCreate(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    bulletin_id: str = Field(max_length=36, description="an approved bulletin")
    cls: CommandClass = Field(default=CommandClass.NORMAL, alias="class")
    level: SenderLevel | None = Field(
        default=None,
        description="the sender's level; absent: the sender's own (set by the server from "
        "the role); a lower one may be asked for, never a higher",
    )
    timezone: str | None = Field(default=None, description="IANA zone; default the province's")
    starts_local: datetime = Field(description="first play, local wall-clock time, no zone")
    rule: str | None = Field(
        default=None, max_length=500, description='RFC 5545 RRULE, e.g. "FREQ=DAILY"'
    )
    exdates_local: list[datetime] = Field(default_factory=list, max_length=1000)
    ends_at: datetime | None = Field(default=None, description="UTC hard end")
    plays: int = Field(default=1, ge=1, le=20)
    gap_s: int = Field(default=0, ge=0, le=86_400)
    duration_s: int | None = Field(default=None, ge=1, le=86_400, description="relays")
    areas: list[CodeStr] = Field(default_factory=list, max_length=5000)
    clusters: list[CodeStr] = Field(default_factory=list, max_length=100_000)
    accept_conflicts: bool = Field(
        default=False, description="save although it overlaps others (priority decides)"
    )

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _shape(self) -> ScheduleCreate:
        if self.cls is CommandClass.EMERGENCY:
            raise refuse("class", "emergencies are sent, not scheduled")
        if not self.areas and not self.clusters:
            raise refuse("areas", "give at least one target in areas or clusters")
        if self.starts_local.tzinfo is not None:
            raise refuse(
                "starts_local", "starts_local is local wall-clock time: leave the zone out"
            )
        if self.ends_at is not None and self.ends_at.tzinfo is None:
            raise refuse("ends_at", "ends_at must carry a time zone (UTC: ...Z)")
        return self


class ScheduleUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    starts_local: datetime | None = None
    rule: str | None = None
    exdates_local: list[datetime] | None = None
    ends_at: datetime | None = None
    plays: int | None = Field(default=None, ge=1, le=20)
    gap_s: int | None = Field(default=None, ge=0, le=86_400)
    areas: list[CodeStr] | None = None
    clusters: list[CodeStr] | None = None
    status: str | None = Field(default=None, pattern="^(active|paused|ended)$")
    accept_conflicts: bool = False
    _not_null = not_null(
        "title", "starts_local", "plays", "gap_s", "status", "areas", "clusters", "exdates_local"
    )


class Overlap(BaseModel):
    schedule_id: str
    title: str
    first_overlap_local: datetime
    overlaps: int
    clusters: int


class ScheduleRead(BaseModel):
    id: str
    title: str
    bulletin_id: str
    cls: CommandClass = Field(serialization_alias="class")
    level: SenderLevel
    timezone: str
    starts_local: datetime
    rule: str | None
    exdates_local: list[str]
    ends_at: datetime | None
    plays: int
    gap_s: int
    duration_s: int | None
    target_areas: list[str]
    target_clusters: list[str]
    status: str
    next_fire_at: datetime | None
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    conflicts: list[Overlap] = []


class SlotRead(BaseModel):
    schedule_id: str
    title: str
    cls: CommandClass = Field(serialization_alias="class")
    starts_local: datetime
    occurrence_local: datetime = Field(
        description="the occurrence this play belongs to (several plays may share one): "
        "the value to add to exdates_local to leave it out"
    )
    starts_at: datetime
    duration_s: int
    clusters: int


class FiringRead(BaseModel):
    slot_at: datetime
    fired_at: datetime
    outcome: str
    reason: str | None
    broadcast_id: str | None


class NowNext(BaseModel):
    """One cluster at a glance: online, what it plays now, what its schedule plays next."""

    cluster: str
    online: bool
    last_seen_at: datetime | None
    playing_broadcast: str | None
    playing_title: str | None
    next_title: str | None
    next_at: datetime | None
    next_local: datetime | None


class StaleSchedule(BaseModel):
    cluster: str
    online: bool
    last_seen_at: datetime | None
    version_pushed: int
    version_held: int | None
    pushed_at: datetime | None


class LocalPlayRead(BaseModel):
    cluster: str
    slot_at: datetime | None
    started_at: datetime
    reported_at: datetime
    broadcast_id: str | None
