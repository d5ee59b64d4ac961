"""Turn a broadcast into the protocol commands that go on the wire."""

from __future__ import annotations

from datetime import datetime

from broadcast.models import Broadcast
from devices import protocol
from devices.protocol import Command, CommandKind, MediaRef, StreamRef, Target
from media.models import MediaFile

Publication = tuple[str, Command]  # (topic, command)


def play_command(
    broadcast: Broadcast, media: MediaFile | None, target: Target, *, media_url: str | None
) -> Command:
    media_ref = None
    if media is not None and media_url is not None:
        media_ref = MediaRef(
            url=media_url,
            sha256=media.sha256,
            size=media.size,
            duration_ms=media.duration_ms,
            format=media.format,
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
