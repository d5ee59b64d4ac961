"""Turn a broadcast into the protocol commands that go on the wire."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from broadcast.models import Broadcast
from devices import protocol
from devices.protocol import Command, CommandKind, MediaRef, StreamRef, Target
from media.models import MediaFile

Publication = tuple[str, Command]  # (topic, command)
UrlFor = Callable[[str, Target], str]  # (sha256, target) -> signed URL


@dataclass(frozen=True)
class MediaSet:
    """A broadcast's audio: the default rendition and the other profiles' ones."""

    main: MediaFile
    alternates: dict[str, MediaFile] = field(default_factory=dict)


def _ref(media: MediaFile, target: Target, url_for: UrlFor) -> MediaRef:
    return MediaRef(
        url=url_for(media.sha256, target),
        sha256=media.sha256,
        size=media.size,
        duration_ms=media.duration_ms,
        format=media.format,
        profile=media.profile,
    )


def play_command(
    broadcast: Broadcast, media: MediaSet | None, target: Target, *, url_for: UrlFor
) -> Command:
    media_ref = None
    if media is not None:
        media_ref = _ref(media.main, target, url_for).model_copy(
            update={
                "alternates": tuple(
                    _ref(m, target, url_for) for _, m in sorted(media.alternates.items())
                )
            }
        )
    stream_ref = StreamRef(url=broadcast.stream_url) if broadcast.stream_url else None
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
            "media": media_ref,
            "stream": stream_ref,
            "repeat": broadcast.repeat,
        }
    )


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
    return [
        (protocol.area_command_topic(code), Target(area=code)) for code in broadcast.target_areas
    ] + [
        (protocol.cluster_command_topic(code), Target(cluster=code))
        for code in broadcast.target_clusters
    ]
