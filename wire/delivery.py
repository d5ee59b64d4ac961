"""What a cluster is sent to play: the delivery profiles (the codec, channels, rate and
bitrate a model of cluster decodes) and the loudness every rendition is levelled to.

Data only, read from the settings: turning them into ffmpeg arguments is
media/pipeline.py's business, so core/settings.py needs nothing of the media pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field


class DeliveryProfile(BaseModel):
    """What one model of cluster plays: codec, channels, rate and bitrate."""

    codec: str = Field(default="mp3", pattern="^(mp3|opus|aac)$")
    channels: int = Field(default=1, ge=1, le=2)
    sample_rate: int = Field(default=44100, ge=8000, le=48000)
    bitrate_kbps: int = Field(default=64, ge=8, le=320)

    @property
    def extension(self) -> str:
        return {"mp3": "mp3", "opus": "ogg", "aac": "m4a"}[self.codec]

    @property
    def content_type(self) -> str:
        return {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/mp4"}[self.codec]


@dataclass(frozen=True)
class LoudnessTarget:
    """EBU R 128 target of every rendition: integrated loudness (LUFS), true-peak
    ceiling (dBTP) and loudness range (LU)."""

    integrated: float = -16.0
    true_peak: float = -1.5
    lra: float = 11.0
