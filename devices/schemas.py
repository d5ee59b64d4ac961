from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from core.schemas import CodeStr, ORMModel, not_null


class ClusterKind(StrEnum):
    SPEAKER_CLUSTER = "speaker_cluster"
    EBOARD = "eboard"


Latitude = Field(default=None, ge=-90, le=90)
Longitude = Field(default=None, ge=-180, le=180)


class ClusterCreate(BaseModel):
    code: CodeStr
    name: str = Field(min_length=1, max_length=200)
    kind: ClusterKind = ClusterKind.SPEAKER_CLUSTER
    area_code: CodeStr
    latitude: float | None = Latitude
    longitude: float | None = Longitude
    speakers: int = Field(default=0, ge=0, le=64)
    firmware: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=64)
    installed_on: date | None = None


class ClusterUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: ClusterKind | None = None
    area_code: CodeStr | None = None
    latitude: float | None = Latitude
    longitude: float | None = Longitude
    speakers: int | None = Field(default=None, ge=0, le=64)
    firmware: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=64)
    installed_on: date | None = None
    _not_null = not_null("name", "kind", "area_code", "speakers")


class ClusterRead(ORMModel):
    code: str
    name: str
    kind: ClusterKind
    area_code: str
    latitude: float | None
    longitude: float | None
    speakers: int
    firmware: str | None
    model: str | None
    installed_on: date | None
    online: bool
    last_seen_at: datetime | None
    offline_since: datetime | None


class ProvisionedCluster(BaseModel):
    """What a device (or the simulator) needs to join: its code and area topics."""

    code: str
    kind: ClusterKind
    areas: list[str]  # codes from the root down to the cluster's own area
    # The audio rendition it plays (by its model) and its key for signed media URLs
    # (wire.media_auth); the key changes if the cluster moves to another area.
    profile: str
    media_key: str
    # Ed25519 public keys (base64url) whose signatures it accepts on commands, schedules
    # and key sets (docs/protocol.md section 9); later changes arrive as a signed KeySet.
    trusted_keys: list[str]
    # The keys whose signatures it accepts on firmware images (docs/protocol.md 4.7): the
    # vendors' and the province's release key, never the command key.
    firmware_keys: list[str] = []
    model: str | None = None  # hardware model (a firmware image names the one it is for)


class DeviceBroker(BaseModel):
    url: str  # mqtts://host:8883 in production
    ca_pem: str | None = None  # the CA that signed the broker's certificate, when TLS


class OwnProvisioning(ProvisionedCluster):
    """What a device fetches for itself with its own broker credentials (protocol 10):
    its provisioning, where to connect, and how often to speak."""

    broker: DeviceBroker
    heartbeat_s: float
    offline_after_missed: int


class BrokerCredentials(BaseModel):
    """A cluster's broker account: shown once, when issued (only a hash is kept)."""

    username: str
    password: str


class ClusterCreated(ClusterRead):
    mqtt: BrokerCredentials = Field(description="its broker account: shown this once")
