"""One settings object, read from the environment (prefix BROADCAST_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from devices import media_auth
from media.pipeline import DeliveryProfile, LoudnessTarget

PLACEHOLDER_SECRET = "change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BROADCAST_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./var/broadcast.db"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # Shared-subscription group: every API replica joins it so each device message is
    # handled by exactly one replica.
    mqtt_share_group: str = "control"
    # Base URL at which clients and clusters reach this API.
    public_base_url: str = "http://127.0.0.1:8000"
    # Where clusters download media. Default: this API's /media. In production a separate
    # media server (`broadcast media-serve`, nginx or a CDN over the media directory) takes
    # the province-wide download burst off the control plane's event loop.
    media_base_url: str | None = None
    media_dir: Path = Path("./var/media")
    max_upload_bytes: int = 700 * 1024 * 1024  # an hour of CD-quality WAV is 635 MB
    max_audio_s: float = 3600.0  # an hour: longer is a programme, relay it as a stream
    # EBU R 128 target for what clusters play. -16 LUFS (louder than broadcast TV's -23)
    # because horn speakers outdoors compete with traffic, rain and market noise.
    loudness_lufs: float = -16.0
    loudness_true_peak_db: float = -1.5
    # What clusters play, by name; each upload is rendered once per profile. Clusters whose
    # model is listed in model_profiles get that profile's rendition, the rest the default.
    delivery_profiles: dict[str, DeliveryProfile] = {"mp3-mono-64k": DeliveryProfile()}
    default_delivery_profile: str = "mp3-mono-64k"
    model_profiles: dict[str, str] = {}
    # Text-to-speech: the engine by name (media/tts/speech.py ENGINES) and its pace.
    tts_engine: str = "espeak-ng"
    tts_words_per_minute: int = 140
    # Transcodes at once per process: each takes a core, and emergencies must still get one.
    ingest_concurrency: int = 1
    secret_key: str = PLACEHOLDER_SECRET

    # Acknowledgement ingest: one transaction per batch, never per message.
    ack_batch_max: int = 1000
    ack_batch_window_s: float = 0.01

    # Re-sending unconfirmed deliveries: exponential backoff from base to cap.
    resend_base_s: float = 2.0
    resend_cap_s: float = 30.0
    # After a cluster says "playing", how long past the media's end we wait for "played"
    # before asking again (an ack can be lost on a weak 4G link).
    played_grace_s: float = 5.0
    sweep_interval_s: float = 0.5
    # Single-machine default: the background jobs run inside the API process.
    run_jobs_in_api: bool = True

    default_timezone: str = "Asia/Ho_Chi_Minh"
    # A slot the scheduler reaches late (after a restart) is still played within this
    # window, and recorded as late; beyond it, recorded as missed.
    schedule_grace_s: float = 300.0
    # A scheduled broadcast stays valid this long past its slot (plus its length), for
    # clusters that are briefly offline.
    schedule_expiry_s: int = 900
    # How far ahead each cluster holds its schedule (pushed retained), and how often the
    # pushes are recomputed (a change to a schedule pushes at once).
    schedule_push_hours: int = 48
    schedule_push_interval_s: float = 30.0
    # How far ahead overlaps are looked for when a schedule is created or changed.
    conflict_horizon_days: int = 14
    default_expiry_s: int = 3600

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production" and self.secret_key == PLACEHOLDER_SECRET:
            raise ValueError("BROADCAST_SECRET_KEY must be set in production")
        return self

    @model_validator(mode="after")
    def _profiles_exist(self) -> Settings:
        names = {self.default_delivery_profile, *self.model_profiles.values()}
        unknown = sorted(names - set(self.delivery_profiles))
        if unknown:
            raise ValueError(f"delivery profiles not defined: {', '.join(unknown)}")
        return self

    @property
    def loudness_target(self) -> LoudnessTarget:
        return LoudnessTarget(self.loudness_lufs, self.loudness_true_peak_db)

    def profile_for_model(self, model: str | None) -> str:
        return self.model_profiles.get(model or "", self.default_delivery_profile)

    @property
    def media_signing_key(self) -> bytes:
        return media_auth.server_key(self.secret_key)

    def media_url(self, sha256: str, scope: str, expires: int) -> str:
        """A media URL signed for one scope (cluster or area) until `expires` (Unix time)."""
        base = self.media_base_url or self.public_base_url
        query = media_auth.signed_query(self.media_signing_key, sha256, scope, expires)
        return f"{base.rstrip('/')}/media/{sha256}?{query}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
