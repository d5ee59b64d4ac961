"""Broadcast logic: create, cancel, read progress, expire. Services flush, never commit."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from areas import repository as area_repository
from areas.models import Area
from areas.service import AreaNotFound
from authority import Deed, authorise, authorise_aimed
from broadcast import repository
from broadcast.models import Broadcast
from broadcast.schemas import (
    AreaRollup,
    BroadcastCreate,
    BroadcastRead,
    Reach,
    UnconfirmedCluster,
)
from broadcast.states import ACTIVE, UNCONFIRMED, BroadcastStatus, DeliveryState
from core.actors import Actor
from core.backoff import resend_delay_s
from core.clock import Clock
from core.database import chunked
from core.errors import Conflict, InvalidInput, NotFound
from core.settings import Settings
from devices import repository as device_repository
from devices.models import Cluster
from devices.service import ClusterNotFound
from media import service as media_service
from media.models import MediaFile
from standard_warnings import repository as warning_repository
from wire.protocol import CommandClass

S = DeliveryState
# States in which the cluster has told us it has the bulletin.
CONFIRMED = frozenset({S.DELIVERED, S.PLAYING, S.PLAYED, S.PREEMPTED})
# A relay's command stays valid a little past its end, for a late "played".
STREAM_EXPIRY_SLACK_S = 60
MAX_DISPLAY_S = 86_400  # as BroadcastCreate.display_s allows


class BroadcastNotFound(NotFound):
    def __init__(self, broadcast_id: str) -> None:
        super().__init__(
            f"broadcast {broadcast_id!r} not found", detail={"broadcast": broadcast_id}
        )


def _minimal_cover(areas: list[Area]) -> list[Area]:
    """Drop areas that lie under another targeted area: their topic is already covered."""
    kept: list[Area] = []
    for area in sorted(areas, key=lambda a: len(a.path)):
        if not any(area.path.startswith(k.path) for k in kept):
            kept.append(area)
    return kept


@dataclass(frozen=True, slots=True)
class Targets:
    """What a request addresses: the minimal cover of its areas, and the clusters it names
    outside that cover (id, code)."""

    cover: list[Area]
    extra: list[tuple[int, str]]

    @property
    def paths(self) -> list[str]:
        return [a.path for a in self.cover]

    @property
    def extra_ids(self) -> list[int]:
        return [cid for cid, _ in self.extra]


async def addressed(session: AsyncSession, areas: list[str], clusters: list[str]) -> Targets:
    """The request's targets; unknown areas and clusters are refused by name."""
    found = await area_repository.get_many_by_code(session, areas)
    for code in areas:
        if code not in found:
            raise AreaNotFound(code)
        if (gone := found[code]).dissolved_on is not None:
            raise InvalidInput(
                f"area {code} ({gone.name}) was dissolved on {gone.dissolved_on.isoformat()}: "
                f"send to {', '.join(gone.successors or [])} instead",
                detail={"field": "areas", "successors": gone.successors or []},
            )
    cover = _minimal_cover(list(found.values()))
    named = await device_repository.named_clusters(session, clusters)
    named_codes = {code for _, code, _ in named}
    for code in clusters:
        if code not in named_codes:
            raise ClusterNotFound(code)
    paths = [a.path for a in cover]
    outside = [(cid, code) for cid, code, path in named if not path.startswith(tuple(paths))]
    # Clusters still moving to one of these areas (a reorganisation) may not listen on its
    # topic yet: they are named on their own topic too, so none misses it; a device that
    # hears both acts once (one command id). Broadcasts and technicians' operations
    # (health/operations.py) both come through here.
    named_outside = {cid for cid, _ in outside}
    moving = await device_repository.moving_under(session, paths)
    outside += [(cid, code) for cid, code in moving if cid not in named_outside]
    return Targets(cover, sorted(outside, key=lambda c: c[1]))


async def resolve_targets(
    session: AsyncSession, areas: list[str], clusters: list[str]
) -> tuple[list[Area], list[str], dict[int, int]]:
    """(minimal area cover, clusters named outside it, {cluster id: area id} of every
    targeted cluster); unknown areas and clusters are refused by name."""
    targets = await addressed(session, areas, clusters)
    rows = await device_repository.targets_in_subtrees(session, targets.paths, targets.extra_ids)
    return targets.cover, [code for _, code in targets.extra], {cid: aid for cid, _, aid in rows}


async def aired_rendition(
    session: AsyncSession, settings: Settings, *, cls: CommandClass, media: MediaFile
) -> MediaFile:
    """The rendition a play of `media` leads with: for an emergency, the compact speech
    one when it rides in the command and `media` does not (seconds matter more than
    fidelity, docs/protocol.md 4.2); otherwise `media`. A standard warning's clip stays as
    the library holds it on every cluster (protocol 11.1)."""
    if cls is not CommandClass.EMERGENCY:
        return media
    compact = await media_service.compact_rendition(session, settings, media)
    if compact is None or await warning_repository.holds(session, media.sha256):
        return media
    return compact


async def create(
    *,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    data: BroadcastCreate,
    actor: Actor,
    bulletin_id: str | None = None,
    live: bool = False,
) -> tuple[Broadcast, int]:
    """Write the broadcast and one QUEUED delivery per target cluster, if the actor may
    send it (authority: the class's right, the targets' area, the level asked for).
    `live`: a person speaking now (live/): the stream is this control plane's own."""
    level = await authorise_aimed(session, actor, Deed.SEND, data)
    now = clock.now()
    default_expiry = now + timedelta(seconds=settings.default_expiry_s)
    if data.stream_ends_at is not None:
        default_expiry = data.stream_ends_at + timedelta(seconds=STREAM_EXPIRY_SLACK_S)
    expires_at = data.expires_at or default_expiry
    if expires_at <= now:
        raise InvalidInput(
            "expires_at is in the past: an expired broadcast cannot be sent",
            detail={"field": "expires_at"},
        )
    longest = timedelta(seconds=settings.max_validity_s[data.cls.value])
    if expires_at > now + longest:
        raise InvalidInput(
            f"expires_at is too far: a {data.cls.value} broadcast stays valid at most "
            f"{longest.total_seconds() / 3600:g} h",
            detail={"field": "expires_at"},
        )
    if data.stream_ends_at is not None and data.stream_ends_at > expires_at:
        raise InvalidInput("stream_ends_at is after expires_at", detail={"field": "stream_ends_at"})
    if data.stream_url is not None and (why := settings.relay_problem(str(data.stream_url))):
        raise InvalidInput(why, detail={"field": "stream_url"})
    if data.stream_url is None and (data.stream_starts_at or data.stream_ends_at):
        raise InvalidInput(
            "stream_starts_at and stream_ends_at are for relays (a stream_url)",
            detail={"field": "stream_starts_at"},
        )
    display_s = data.display_s
    aired_sha256 = None
    if data.media_sha256 is not None:
        media = await media_service.get(session=session, sha256=data.media_sha256)
        if media.kind != "audio":
            raise InvalidInput("media_sha256 is not audio", detail={"field": "media_sha256"})
        display_s = display_s or max(1, math.ceil(media.duration_ms * data.repeat / 1000))
        aired = await aired_rendition(session, settings, cls=data.cls, media=media)
        aired_sha256 = aired.sha256
    if data.image_sha256 is not None:
        image = await media_service.get(session=session, sha256=data.image_sha256)
        if image.kind != "image":
            raise InvalidInput("image_sha256 is not an image", detail={"field": "image_sha256"})
    if data.stream_url is not None and display_s is None:
        start = data.stream_starts_at or now
        display_s = math.ceil(((data.stream_ends_at or expires_at) - start).total_seconds())

    targets = await addressed(session, data.areas, data.clusters)
    paths, extra_ids = targets.paths, targets.extra_ids
    target_areas = [a.code for a in targets.cover]
    target_clusters = [code for _, code in targets.extra]
    if data.display_only:
        # Nothing to hear, so no area topic: a speaker cluster is never handed a play with
        # nothing to play. Each e-board under the targets is addressed by name instead.
        eboards = await device_repository.targets_in_subtrees(
            session, paths, extra_ids, kind="eboard"
        )
        if not eboards:
            raise InvalidInput(
                "no e-boards under the given targets to show a display-only broadcast",
                detail={"field": "areas"},
            )
        paths, extra_ids = [], [cid for cid, _, _ in eboards]
        target_areas, target_clusters = [], sorted(code for _, code, _ in eboards)
        until_expiry = math.ceil((expires_at - now).total_seconds())
        display_s = display_s or max(1, min(until_expiry, MAX_DISPLAY_S))

    broadcast_id = str(uuid.uuid4())
    stream_url = str(data.stream_url) if data.stream_url else None
    if live:
        stream_url = f"{settings.public_base_url.rstrip('/')}/live/{broadcast_id}"
        display_s = math.ceil((expires_at - now).total_seconds())
    broadcast = Broadcast(
        id=broadcast_id,
        title=data.title,
        cls=data.cls.value,
        level=level.value,
        status=BroadcastStatus.ACTIVE,
        media_sha256=data.media_sha256,
        aired_sha256=aired_sha256,
        stream_url=stream_url,
        live=live,
        stream_starts_at=data.stream_starts_at,
        stream_ends_at=data.stream_ends_at,
        body=(data.text or "").strip() or None,
        language=data.language,
        image_sha256=data.image_sha256,
        display_s=display_s,
        bulletin_id=bulletin_id,
        sent_by=actor.name,
        repeat=data.repeat,
        drill=data.drill,
        target_areas=target_areas,
        target_clusters=target_clusters,
        command_id=str(uuid.uuid4()),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(broadcast)
    await session.flush()
    first_retry = now + timedelta(seconds=resend_delay_s(1, settings))
    total = await repository.insert_queued_deliveries(
        session,
        broadcast_id=broadcast.id,
        paths=paths,
        cluster_ids=extra_ids,
        next_attempt_at=first_retry,
    )
    if not total:  # the caller's transaction rolls the broadcast back
        raise InvalidInput("no clusters under the given targets", detail={"field": "areas"})
    return broadcast, total


async def get(*, session: AsyncSession, broadcast_id: str) -> Broadcast:
    broadcast = await repository.get(session, broadcast_id)
    if broadcast is None:
        raise BroadcastNotFound(broadcast_id)
    return broadcast


async def authorise_stop(session: AsyncSession, actor: Actor, broadcast: Broadcast) -> None:
    """Whether `actor` may stop `broadcast` (a cancel, or ending a live session someone
    else started): the class's right, the broadcast's level, all its targets inside the
    actor's area."""
    await authorise(
        session,
        actor,
        Deed.STOP,
        cls=CommandClass(broadcast.cls),
        level=broadcast.level,
        areas=broadcast.target_areas,
        clusters=broadcast.target_clusters,
    )


async def cancel(
    *, session: AsyncSession, clock: Clock, settings: Settings, broadcast_id: str, actor: Actor
) -> Broadcast:
    """Mark it cancelled now, if the actor may stop it (authority: the class's right, the
    broadcast's level, all its targets inside the actor's area); the cancel command is
    re-sent until each cluster confirms."""
    broadcast = await get(session=session, broadcast_id=broadcast_id)
    await authorise_stop(session, actor, broadcast)
    now = clock.now()
    if broadcast.status != BroadcastStatus.ACTIVE:
        raise Conflict(
            f"broadcast {broadcast_id!r} is already {broadcast.status}",
            detail={"broadcast": broadcast_id, "status": broadcast.status},
        )
    if broadcast.expires_at <= now:
        raise Conflict(
            f"broadcast {broadcast_id!r} has expired", detail={"broadcast": broadcast_id}
        )
    broadcast.status = BroadcastStatus.CANCELED
    broadcast.canceled_at = now
    broadcast.cancel_command_id = str(uuid.uuid4())
    await repository.move_all(
        session,
        broadcast_ids=[broadcast.id],
        from_states=ACTIVE,
        to_state=S.CANCELED,
        at=now,
        next_attempt_at=now + timedelta(seconds=resend_delay_s(1, settings)),
    )
    await session.flush()
    return broadcast


async def expire_due(*, session: AsyncSession, clock: Clock) -> list[str]:
    """Close broadcasts past their expiry: never reached -> EXPIRED, reached but not
    confirmed played -> TIMED_OUT."""
    now = clock.now()
    due = await repository.expired_active(session, now=now)
    ids = [b.id for b in due]
    if ids:
        await repository.move_all(
            session, broadcast_ids=ids, from_states=UNCONFIRMED, to_state=S.EXPIRED, at=now
        )
        await repository.move_all(
            session,
            broadcast_ids=ids,
            from_states={S.DELIVERED, S.PLAYING},
            to_state=S.TIMED_OUT,
            at=now,
        )
        for b in due:
            b.status = BroadcastStatus.EXPIRED
    await repository.stop_retrying_expired_cancels(session, now=now)
    await session.flush()
    return ids


def _header(broadcast: Broadcast) -> dict[str, Any]:
    """The broadcast's own fields, as every view of it shows them."""
    return {
        "id": broadcast.id,
        "title": broadcast.title,
        "cls": broadcast.cls,
        "level": broadcast.level,
        "status": broadcast.status,
        "media_sha256": broadcast.media_sha256,
        "stream_url": broadcast.stream_url,
        "stream_starts_at": broadcast.stream_starts_at,
        "stream_ends_at": broadcast.stream_ends_at,
        "text": broadcast.body,
        "language": broadcast.language,
        "drill": broadcast.drill,
        "live": broadcast.live,
        "image_sha256": broadcast.image_sha256,
        "display_s": broadcast.display_s,
        "display_only": broadcast.media_sha256 is None and broadcast.stream_url is None,
        "bulletin_id": broadcast.bulletin_id,
        "sent_by": broadcast.sent_by,
        "target_areas": broadcast.target_areas,
        "target_clusters": broadcast.target_clusters,
        "created_at": broadcast.created_at,
        "expires_at": broadcast.expires_at,
        "canceled_at": broadcast.canceled_at,
    }


def just_sent(broadcast: Broadcast, total: int, *, published: bool) -> BroadcastRead:
    """The answer to a send, from what the request knows: no read behind the acks."""
    state = S.SENT if published else S.QUEUED
    return BroadcastRead(
        **_header(broadcast),
        total=total,
        confirmed=0,
        counts={state: total},
        unconfirmed_total=total,
        published=published,
    )


async def read(
    *,
    session: AsyncSession,
    broadcast_id: str,
    rollup_depth: int = 1,
    unconfirmed_limit: int = 200,
) -> BroadcastRead:
    broadcast = await get(session=session, broadcast_id=broadcast_id)
    tally = await repository.tally(session, broadcast_id)
    counts: dict[DeliveryState, int] = {}
    per_path: dict[str, dict[DeliveryState, int]] = {}
    stops = 0
    for path, state, n, stopped in tally:
        counts[S(state)] = counts.get(S(state), 0) + n
        per_path.setdefault(path, {})[S(state)] = n
        stops += stopped
    unconfirmed_rows = await repository.unconfirmed(session, broadcast_id, limit=unconfirmed_limit)
    return BroadcastRead(
        **_header(broadcast),
        total=sum(counts.values()),
        confirmed=sum(n for s, n in counts.items() if s in CONFIRMED),
        counts=counts,
        stops_confirmed=stops,
        areas=await _rollup(session, per_path, rollup_depth),
        unconfirmed=[
            UnconfirmedCluster(
                cluster=code,
                area_code=area_code,
                state=S(state),
                attempts=attempts,
                online=online,
                last_seen_at=last_seen_at,
            )
            for code, area_code, state, attempts, online, last_seen_at in unconfirmed_rows
        ],
        unconfirmed_total=sum(n for s, n in counts.items() if s in UNCONFIRMED),
    )


async def _rollup(
    session: AsyncSession, per_path: dict[str, dict[DeliveryState, int]], depth: int
) -> list[AreaRollup]:
    """Counts per area at one depth of the tree (0 = province), worst first."""
    buckets: dict[str, dict[DeliveryState, int]] = {}
    for path, area_counts in per_path.items():
        codes = [c for c in path.split("/") if c]
        bucket = buckets.setdefault(codes[min(depth, len(codes) - 1)], {})
        for state, n in area_counts.items():
            bucket[state] = bucket.get(state, 0) + n
    names = await area_repository.get_many_by_code(session, list(buckets))
    rollups = [
        AreaRollup(
            area_code=code,
            area_name=names[code].name if code in names else code,
            total=sum(c.values()),
            confirmed=sum(n for s, n in c.items() if s in CONFIRMED),
            counts=c,
        )
        for code, c in buckets.items()
    ]
    return sorted(rollups, key=lambda r: (r.confirmed / r.total, r.area_code))


async def reach(*, session: AsyncSession, areas: list[str], clusters: list[str]) -> Reach:
    """What the targets cover, by kind; unknown areas and clusters are refused by name."""
    _, _, targets = await resolve_targets(session, areas, clusters)
    kinds: dict[str, int] = {}
    for chunk in chunked(sorted(targets), 1):
        rows = await session.execute(
            select(Cluster.kind, func.count()).where(Cluster.id.in_(chunk)).group_by(Cluster.kind)
        )
        for kind, count in rows.all():
            kinds[kind] = kinds.get(kind, 0) + count
    return Reach(
        speakers=kinds.get("speaker_cluster", 0),
        eboards=kinds.get("eboard", 0),
        communes=len(set(targets.values())),
    )
