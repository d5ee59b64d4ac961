"""One settings object, read from the environment (prefix BROADCAST_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    max_upload_bytes: int = 200 * 1024 * 1024
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
    default_expiry_s: int = 3600

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production" and self.secret_key == PLACEHOLDER_SECRET:
            raise ValueError("BROADCAST_SECRET_KEY must be set in production")
        return self

    def media_url(self, sha256: str) -> str:
        base = self.media_base_url or self.public_base_url
        return f"{base.rstrip('/')}/media/{sha256}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
