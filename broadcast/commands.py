"""Turn a broadcast into the protocol commands that go on the wire."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from broadcast.models import Broadcast
from media.models import MediaFile
from wire import media_auth, protocol
from wire.protocol import (
    Command,
    CommandKind,
    Display,
    DisplayStyle,
    MediaRef,
    StreamRef,
    Target,
)

Publication = tuple[str, Command]  # (topic, command)
UrlFor = Callable[[str, Target], str]  # (sha256, target) -> signed URL
DEFAULT_DISPLAY_S = 60  # a bulletin with neither audio nor a set duration stays a minute


@dataclass(frozen=True)
class MediaSet:
    """A broadcast's audio: the default rendition and the other profiles' ones."""

    main: MediaFile
    alternates: dict[str, MediaFile] = field(default_factory=dict)


@dataclass(frozen=True)
class Content:
    """The files a broadcast's command names: audio for speakers, an image for e-boards."""

    audio: MediaSet | None = None
    image: MediaFile | None = None
    # The audio's first airing: no cluster holds it yet, so a small clip rides in the
    # command. Aired before (a repeat, a template), the clusters that heard it hold it and
    # carrying it again would cost the broker the clip once per cluster for nothing
    # (docs/benchmarks.md); those that did not download it.
    first_airing: bool = True


def url_signer(media_url: Callable[[str, str, int], str], expires_at: datetime) -> UrlFor:
    """Media URLs good until `expires_at`, each only for the command's target (a cluster
    or an area): wire.media_auth, docs/protocol.md 4.2."""
    expires = int(expires_at.timestamp()) + 1

    def url_for(sha256: str, target: Target) -> str:
        scope = (
            media_auth.area_scope(target.area)
            if target.area
            else media_auth.cluster_scope(target.cluster or "")
        )
        return media_url(sha256, scope, expires)

    return url_for


def _ref(media: MediaFile, target: Target, url_for: UrlFor) -> MediaRef:
    return MediaRef(
        url=url_for(media.sha256, target),
        sha256=media.sha256,
        size=media.size,
        duration_ms=media.duration_ms,
        format=media.format,
        profile=media.profile,
    )


DRILL_MARK = "DIỄN TẬP / EXERCISE: "


def display_for(
    broadcast: Broadcast, image: MediaFile | None, target: Target, url_for: UrlFor
) -> Display:
    """The e-board's part of the command: the same bulletin as text."""
    return Display(
        # An exercise says so on the screen, in both languages a province uses.
        title=f"{DRILL_MARK}{broadcast.title}" if broadcast.drill else broadcast.title,
        body=broadcast.body or "",
        image=_ref(image, target, url_for) if image is not None else None,
        duration_s=broadcast.display_s or DEFAULT_DISPLAY_S,
        style=DisplayStyle(broadcast.cls),
        language=broadcast.language,
    )


def media_ref(media: MediaSet, target: Target, url_for: UrlFor) -> MediaRef:
    """The default rendition with the other profiles' as alternates, URLs signed."""
    return _ref(media.main, target, url_for).model_copy(
        update={
            "alternates": tuple(
                _ref(m, target, url_for) for _, m in sorted(media.alternates.items())
            )
        }
    )


def play_command(
    broadcast: Broadcast,
    content: Content,
    target: Target,
    *,
    url_for: UrlFor,
    live_url_for: UrlFor | None = None,
    inline: str | None = None,
) -> Command:
    """`live_url_for`: (broadcast id, target) -> the live stream's signed URL. `inline`: the
    default rendition's bytes as `media.data` (base64), carried in the command beside its
    URL (docs/protocol.md 4.2)."""
    media = content.audio
    media_ref_ = media_ref(media, target, url_for) if media is not None else None
    if media_ref_ is not None and inline is not None:
        media_ref_ = media_ref_.model_copy(update={"data": inline})
    stream_ref = None
    if broadcast.live and live_url_for is not None:
        # Until the officer ends it: no ends_at (docs/protocol.md 4.4.1).
        stream_ref = StreamRef(url=live_url_for(broadcast.id, target), live=True)
    elif broadcast.stream_url:
        stream_ref = StreamRef(
            url=broadcast.stream_url,
            starts_at=broadcast.stream_starts_at,
            ends_at=broadcast.stream_ends_at,
        )
    return Command.model_validate(
        {
            "id": broadcast.command_id,
            "kind": CommandKind.PLAY,
            "broadcast": broadcast.id,
            "class": broadcast.cls,
            "level": broadcast.level,
            "issued_at": broadcast.created_at,
            "expires_at": broadcast.expires_at,
            "target": target,
            "title": broadcast.title,
            "media": media_ref_,
            "stream": stream_ref,
            "display": display_for(broadcast, content.image, target, url_for),
            "item": broadcast.schedule_item,
            "starts_at": _slot_of(broadcast.schedule_item),
            "repeat": broadcast.repeat,
        }
    )


def _slot_of(item: str | None) -> datetime | None:
    parsed = protocol.parse_item(item) if item else None
    return parsed[1] if parsed else None


def cancel_command(broadcast: Broadcast, target: Target, issued_at: datetime) -> Command:
    assert broadcast.cancel_command_id is not None
    return Command.model_validate(
        {
            "id": broadcast.cancel_command_id,
            "kind": CommandKind.CANCEL,
            "broadcast": broadcast.id,
            "class": broadcast.cls,
            "level": broadcast.level,
            "issued_at": issued_at,
            "expires_at": broadcast.expires_at,
            "target": target,
            "title": broadcast.title,
        }
    )


def fan_out_targets(broadcast: Broadcast) -> list[tuple[str, Target]]:
    """One publication per targeted area (its topic reaches every cluster below it) and
    one per cluster named on its own; the targets were normalised when the broadcast was
    created, so no cluster is covered twice."""
    return fan_out(broadcast.target_areas, broadcast.target_clusters)


def stage_command(
    *,
    stage_id: str,
    cls: str,
    level: str,
    title: str,
    media: MediaSet,
    target: Target,
    issued_at: datetime,
    expires_at: datetime,
    url_for: UrlFor,
) -> Command:
    """Fetch and hold this clip until `expires_at`, unanswered: sent while the duty officer
    reads the confirmation, so the play that follows finds it held (docs/protocol.md 4.2).
    Nothing is stored for it: it is a head start, never a delivery."""
    return Command.model_validate(
        {
            "id": stage_id,
            "kind": CommandKind.STAGE,
            "broadcast": stage_id,
            "class": cls,
            "level": level,
            "issued_at": issued_at,
            "expires_at": expires_at,
            "target": target,
            "title": title,
            "media": media_ref(media, target, url_for),
        }
    )


def fan_out(areas: list[str], clusters: list[str]) -> list[tuple[str, Target]]:
    """One publication per area topic and one per cluster named on its own."""
    return [(protocol.area_command_topic(code), Target(area=code)) for code in areas] + [
        (protocol.cluster_command_topic(code), Target(cluster=code)) for code in clusters
    ]
