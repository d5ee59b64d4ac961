from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, Field, model_validator

from broadcast.states import DeliveryState
from core.schemas import CodeStr, refuse
from wire.protocol import CommandClass, SenderLevel

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class BroadcastCreate(BaseModel):
    title: str = Field(
        default="", max_length=300, description="required, unless a warning brings its own"
    )
    cls: CommandClass = Field(default=CommandClass.EMERGENCY, alias="class")
    level: SenderLevel | None = Field(
        default=None,
        description="the sender's level; absent: the sender's own (set by the server from "
        "the role); a lower one may be asked for, never a higher",
    )
    areas: list[CodeStr] = Field(default_factory=list, max_length=5000)
    clusters: list[CodeStr] = Field(default_factory=list, max_length=100_000)
    bulletin_id: str | None = Field(
        default=None,
        max_length=36,
        description="the approved bulletin to air (its content); emergencies may omit it",
    )
    media_sha256: Sha256 | None = None
    warning: CodeStr | None = Field(
        default=None,
        description="a standard warning's id (GET /api/v1/warnings): its audio, which every "
        "cluster holds, and its title unless one is given",
    )
    stream_url: AnyHttpUrl | None = None
    stream_starts_at: datetime | None = Field(default=None, description="absent: at once")
    stream_ends_at: datetime | None = Field(default=None, description="absent: at expiry")
    text: str | None = Field(
        default=None,
        max_length=5000,
        description="shown on e-boards; read aloud by text-to-speech when there is no "
        "media_sha256 or stream_url",
    )
    language: str = Field(default="vi", min_length=2, max_length=32)  # as a bulletin's
    image_sha256: Sha256 | None = Field(default=None, description="shown on e-boards")
    display_s: int | None = Field(
        default=None, ge=1, le=86_400, description="e-board display time; default: the audio's"
    )
    expires_at: datetime | None = Field(
        default=None, description="UTC; defaults to now + BROADCAST_DEFAULT_EXPIRY_S"
    )
    repeat: int = Field(default=1, ge=1, le=100)
    display_only: bool = Field(
        default=False,
        description="shown on the targets' e-boards only, without sound: `text` is what "
        "they show, and each e-board under the areas is addressed by name",
    )
    drill: bool = Field(
        default=False,
        description="an exercise: marked as such on the record, on e-boards and in CAP",
    )

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_source_some_targets(self) -> BroadcastCreate:
        if self.warning is not None:
            # The warning is the audio; `text` stays what e-boards show, as beside a
            # recording (it is read aloud only when there is no audio).
            for name in ("media_sha256", "stream_url", "bulletin_id"):
                if getattr(self, name) is not None:
                    raise refuse("warning", f"a warning is its own audio: give it or {name}")
            if self.display_only:
                raise refuse("warning", "a display-only broadcast has no sound to take")
        elif not self.title:
            raise refuse("title", "give a title (a warning brings its own)")
        if self.media_sha256 is not None and self.stream_url is not None:
            raise refuse("stream_url", "give media_sha256 or stream_url, not both")
        if (
            self.bulletin_id is None
            and self.media_sha256 is None
            and self.warning is None
            and self.stream_url is None
            and not (self.text or "").strip()
        ):
            raise refuse(
                "text", "give bulletin_id, media_sha256, warning, stream_url or text (read aloud)"
            )
        if not self.areas and not self.clusters:
            raise refuse("areas", "give at least one target in areas or clusters")
        if self.display_only:
            for name in ("media_sha256", "stream_url", "bulletin_id"):
                if getattr(self, name) is not None:
                    raise refuse(name, "a display-only broadcast shows its text, nothing else")
            if not (self.text or "").strip():
                raise refuse("text", "a display-only broadcast needs the text to show")
        for name in ("expires_at", "stream_starts_at", "stream_ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must carry a time zone (UTC: ...Z)")
        window = self.stream_starts_at or self.stream_ends_at
        if self.stream_url is None and self.bulletin_id is None and window:
            raise ValueError("stream_starts_at and stream_ends_at need a stream_url")
        if (
            self.stream_starts_at
            and self.stream_ends_at
            and self.stream_ends_at <= self.stream_starts_at
        ):
            raise ValueError("stream_ends_at must be after stream_starts_at")
        return self

    @property
    def needs_speech(self) -> bool:
        return (
            not self.display_only
            and self.bulletin_id is None
            and self.media_sha256 is None
            and self.warning is None
            and self.stream_url is None
        )


class AreaRollup(BaseModel):
    area_code: str
    area_name: str
    total: int
    confirmed: int
    counts: dict[DeliveryState, int]


class UnconfirmedCluster(BaseModel):
    cluster: str
    area_code: str
    state: DeliveryState
    attempts: int
    online: bool
    last_seen_at: datetime | None


class BroadcastRead(BaseModel):
    id: str
    title: str
    cls: CommandClass = Field(serialization_alias="class")
    level: SenderLevel
    status: str
    media_sha256: str | None
    stream_url: str | None
    stream_starts_at: datetime | None = None
    stream_ends_at: datetime | None = None
    text: str | None = None
    language: str = "vi"
    image_sha256: str | None = None
    display_s: int | None = None
    display_only: bool = False  # shown on e-boards, no sound
    bulletin_id: str | None = None
    sent_by: str | None = None
    drill: bool = False
    live: bool = False  # a person speaking now (live/): GET /api/v1/live/{id} tells more
    target_areas: list[str]
    target_clusters: list[str]
    created_at: datetime
    expires_at: datetime
    canceled_at: datetime | None
    total: int
    confirmed: int
    counts: dict[DeliveryState, int]
    stops_confirmed: int = 0
    # False on the answer to a send or cancel when the broker was unreachable: it is
    # committed and the sweep publishes it when the broker returns.
    published: bool = True
    areas: list[AreaRollup] = []
    unconfirmed: list[UnconfirmedCluster] = []
    unconfirmed_total: int = 0


class BroadcastSummary(BaseModel):
    id: str
    title: str
    cls: CommandClass = Field(serialization_alias="class")
    status: str
    drill: bool = False
    created_at: datetime
    expires_at: datetime


class ReachRequest(BaseModel):
    areas: list[CodeStr] = Field(default_factory=list, max_length=5000)
    clusters: list[CodeStr] = Field(default_factory=list, max_length=100_000)
    # What will be sent, if known at the confirmation: the clusters fetch and verify it
    # while the duty officer reads (a stage command, docs/protocol.md 4.2). Staging asks
    # for the right to send it, as the send will.
    media_sha256: Sha256 | None = Field(
        default=None, description="the audio to stage on the targets while the sender confirms"
    )
    bulletin_id: str | None = Field(
        default=None, max_length=36, description="an approved bulletin whose audio to stage"
    )
    # A standard warning is held by every cluster already: nothing to stage.
    warning: CodeStr | None = Field(default=None, description="a standard warning's id")
    cls: CommandClass = Field(default=CommandClass.EMERGENCY, alias="class")
    level: SenderLevel | None = None

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_content(self) -> ReachRequest:
        if self.media_sha256 is not None and self.bulletin_id is not None:
            raise refuse("bulletin_id", "give media_sha256 or bulletin_id, not both")
        if self.warning is not None and (self.media_sha256 or self.bulletin_id):
            raise refuse("warning", "a warning is its own audio: give it alone")
        return self

    @property
    def stages(self) -> bool:
        return self.media_sha256 is not None or self.bulletin_id is not None


class Staged(BaseModel):
    """A clip staged on the targets: they fetch and hold it until `expires_at`."""

    id: str
    media_sha256: str
    expires_at: datetime
    # The clip is small enough to ride in the play command itself: nothing to stage.
    inline: bool = False
    # False if the broker did not take the stage command (the send downloads as before).
    published: bool = True


class Reach(BaseModel):
    speakers: int = Field(description="speaker clusters")
    eboards: int
    communes: int = Field(description="areas with at least one targeted cluster")
    staged: Staged | None = Field(
        default=None, description="the content staged on the targets, when the request gave it"
    )
