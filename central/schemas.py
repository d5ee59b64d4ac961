from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class AreaEntry(BaseModel):
    code: str
    name: str
    level: str
    parent_code: str | None


class StationEntry(BaseModel):
    """A loudspeaker cluster (station) or an e-board, with its state now."""

    code: str
    name: str
    kind: str  # speaker_cluster | eboard
    area_code: str
    latitude: float | None
    longitude: float | None
    speakers: int
    model: str | None
    firmware: str | None
    online: bool
    last_seen_at: datetime | None
    offline_since: datetime | None


class BulletinEntry(BaseModel):
    id: str
    title: str
    topic: str
    cls: str
    language: str
    status: str
    area_code: str
    author: str
    valid_from: datetime | None
    valid_until: datetime | None
    created_at: datetime
    updated_at: datetime


class ScheduleEntry(BaseModel):
    id: str
    title: str
    bulletin_id: str
    cls: str
    timezone: str
    starts_local: datetime
    rule: str | None
    plays: int
    target_areas: list[str]
    target_clusters: list[str]
    status: str
    next_fire_at: datetime | None
    updated_at: datetime


class DeliveryTimes(BaseModel):
    """Seconds from the request until that share of the clusters had confirmed; None
    when the share was never reached."""

    to_50: float | None
    to_90: float | None
    to_100: float | None


class BroadcastEntry(BaseModel):
    id: str
    title: str
    cls: str
    level: str
    drill: bool
    status: str
    created_at: datetime
    expires_at: datetime
    target_areas: list[str]
    clusters: int
    confirmed: int
    played: int
    failed: int
    times: DeliveryTimes


class Statistics(BaseModel):
    area_code: str
    since: datetime
    until: datetime
    broadcasts: int
    by_class: dict[str, int]
    drills: int
    bulletins_by_topic: dict[str, int]
    plays: int
    airtime_s: int
    clusters: int
    working_share: float
    emergencies_timed: int
    # Medians over the period's emergencies of each one's time to 50, 90, 100% confirmed.
    emergency_median_to_50_s: float | None
    emergency_median_to_90_s: float | None
    emergency_median_to_100_s: float | None
    alarms_raised: int
    alarms_acknowledged: int
    alarms_cleared: int
