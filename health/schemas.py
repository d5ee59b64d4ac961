from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.schemas import CodeStr, refuse
from wire.protocol import CommandKind, OperationParams


class OperationKind(StrEnum):
    """The device operations a technician may send (docs/protocol.md section 4.6)."""

    SET_VOLUME = CommandKind.SET_VOLUME.value
    AMPLIFIER = CommandKind.AMPLIFIER.value
    REBOOT = CommandKind.REBOOT.value
    TEST_TONE = CommandKind.TEST_TONE.value
    TUNE_FM = CommandKind.TUNE_FM.value
    REPORT_STATUS = CommandKind.REPORT_STATUS.value
    SELF_TEST = CommandKind.SELF_TEST.value


class Telemetry(BaseModel):
    """A cluster's latest heartbeat, as the technician reads it."""

    model_config = ConfigDict(from_attributes=True)

    received_at: datetime
    device_at: datetime
    clock_offset_s: float = Field(description="device clock minus ours, seconds")
    playing: str | None
    volume: int | None
    rssi: int | None
    link_quality: int | None
    supply_v: float | None
    power: str | None
    amp_on: bool | None
    amp_temp_c: float | None
    speakers: int | None
    speaker_faults: list[int]
    relay_trip: str | None
    uptime_s: int | None
    firmware: str | None
    latitude: float | None
    longitude: float | None


class Sample(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    volume: int | None
    rssi: int | None
    supply_v: float | None
    power: str | None
    amp_on: bool | None
    amp_temp_c: float | None
    speaker_faults: list[int]
    relay_trip: str | None
    clock_offset_s: float | None
    playing: bool


class AlarmRead(BaseModel):
    id: int
    cluster: str
    kind: str
    detail: str
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None


class ClusterHealthRead(BaseModel):
    cluster: str
    name: str
    online: bool
    last_seen_at: datetime | None
    offline_since: datetime | None
    faulty: bool
    telemetry: Telemetry | None
    alarms: list[AlarmRead] = Field(description="open alarms, newest first")
    history: list[Sample] = Field(description="newest first")


class AreaHealth(BaseModel):
    """Clusters under one area, by state. `faulty` counts clusters that report a fault
    whether online or not; `not_working` those offline or faulty."""

    area_code: str
    name: str
    total: int = 0
    online: int = 0
    offline: int = 0
    faulty: int = 0
    on_battery: int = 0
    not_working: int = 0

    @property
    def not_working_share(self) -> float:
        return self.not_working / self.total if self.total else 0.0

    def add_counts(
        self, total: int, online: int, faulty: int, on_battery: int, not_working: int
    ) -> None:
        self.total += total
        self.online += online
        self.offline += total - online
        self.faulty += faulty
        self.on_battery += on_battery
        self.not_working += not_working


class OperationCreate(BaseModel):
    """A remote command for technicians, to areas (their subtrees) and/or single clusters."""

    kind: OperationKind
    params: OperationParams = Field(default_factory=OperationParams)
    areas: list[CodeStr] = Field(default_factory=list, max_length=5000)
    clusters: list[CodeStr] = Field(default_factory=list, max_length=100_000)
    expires_in_s: int = Field(default=300, ge=10, le=86_400, description="answers awaited")

    @model_validator(mode="after")
    def _has_target(self) -> OperationCreate:
        if not self.areas and not self.clusters:
            raise refuse("areas", "give at least one target in areas or clusters")
        return self


class OperationResultRead(BaseModel):
    cluster: str
    state: str  # sent | accepted | done | failed | rejected | expired
    reason: str | None
    updated_at: datetime


class OperationRead(BaseModel):
    id: str
    kind: str
    params: dict[str, Any]
    requested_by: str
    created_at: datetime
    expires_at: datetime
    total: int
    counts: dict[str, int]
    results: list[OperationResultRead]
    published: bool = True


class SelfTestFailure(BaseModel):
    cluster: str
    name: str
    state: str  # failed | rejected | expired | sent (no answer yet) | accepted
    reason: str


class SelfTestCommune(BaseModel):
    area_code: str
    name: str
    clusters: list[SelfTestFailure]


class SelfTestReport(BaseModel):
    """The morning list: by commune, every cluster that would not have played an
    emergency in the latest self-test."""

    area_code: str
    operation_id: str | None
    started_at: datetime | None = None
    answers_until: datetime | None = None  # clusters silent by then: no answer
    total: int = 0
    passed: int = 0
    communes: list[SelfTestCommune] = []
