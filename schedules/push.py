"""Each cluster's next hours of schedule, pushed to it retained so it plays on time
through a network outage (docs/protocol.md section 11).

A cluster gets a new version only when its items change (a digest of their content is
kept), so a push every half minute costs nothing when nothing changed. Media URLs in the
items are signed for the cluster and valid until each item expires.

The province's standard warnings (docs/protocol.md 11.1) are in every cluster's document:
with a library, every cluster gets one, plays or not, and a change to the library is a
change to every digest, so every cluster gets a new version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Select

from broadcast.commands import Content, MediaSet, UrlFor, media_ref, url_signer
from broadcast.dispatch import load_content
from bulletins import service as bulletin_service
from bulletins.models import Bulletin
from core.clock import Clock
from core.database import session_scope
from core.errors import Conflict
from core.mqtt import Outgoing
from core.settings import Settings
from core.writes import Writing
from devices.models import Cluster
from media.models import MediaFile
from schedules import queries
from schedules.models import Schedule
from schedules.recurrence import slots
from schedules.states import ScheduleStatus
from schedules.targets import ClusterIndex
from standard_warnings import repository as warning_repository
from wire import protocol
from wire.protocol import (
    CommandClass,
    Display,
    DisplayStyle,
    HeldWarning,
    ScheduleDoc,
    ScheduleItem,
    StreamRef,
    Target,
)

log = logging.getLogger(__name__)

Publish = Callable[[list[Outgoing]], Awaitable[None]]


@dataclass(frozen=True)
class _Play:
    item_id: str
    starts_at: datetime
    expires_at: datetime
    schedule: Schedule
    bulletin: Bulletin
    audio: MediaSet | None
    image: MediaFile | None
    length_s: int


async def _plays_by_cluster(
    session: AsyncSession, settings: Settings, now: datetime
) -> dict[int, list[_Play]]:
    horizon = now + timedelta(hours=settings.schedule_push_hours)
    found: dict[int, list[_Play]] = defaultdict(list)
    active = await session.scalars(select(Schedule).where(Schedule.status == ScheduleStatus.ACTIVE))
    index = await ClusterIndex.load(session)
    contents: dict[tuple[str | None, str | None], Content] = {}  # many schedules, few files
    for schedule in active.all():
        bulletin = await session.get(Bulletin, schedule.bulletin_id)
        if bulletin is None:
            continue
        files = (bulletin.media_sha256, bulletin.image_sha256)
        if files not in contents:
            contents[files] = await load_content(
                session, settings, media_sha256=files[0], image_sha256=files[1]
            )
        content = contents[files]
        length = await queries.play_seconds(session, schedule)
        clusters = index.clusters_of(schedule)
        for slot in slots(queries.recurrence_of(schedule), now, horizon):
            if not _airable(bulletin, schedule, slot):
                # Firing would skip it (archived, rejected, out of its validity): a cluster
                # must not hold it either, or it would play it from storage when offline.
                continue
            expires = slot + timedelta(seconds=length + settings.schedule_expiry_s)
            play = _Play(
                protocol.item_id(schedule.id, slot),
                slot,
                expires,
                schedule,
                bulletin,
                content.audio,
                content.image,
                length,
            )
            for cid in clusters:
                found[cid].append(play)
    return found


@dataclass(frozen=True)
class _Held:
    """A standard warning as every cluster's document lists it."""

    id: str
    title: str
    audio: MediaSet

    def digest_key(self) -> list[object]:
        return [self.id, self.title, self.audio.main.sha256, _alternates(self.audio)]


def _alternates(audio: MediaSet) -> list[str]:
    return sorted(m.sha256 for m in audio.alternates.values())


async def _library(session: AsyncSession, settings: Settings) -> list[_Held]:
    """The standard warnings with their renditions, by id (a province keeps a handful)."""
    held = []
    for warning in await warning_repository.all_warnings(session):
        content = await load_content(
            session, settings, media_sha256=warning.media_sha256, image_sha256=None
        )
        if content.audio is not None:  # (the foreign key keeps the file)
            held.append(_Held(warning.id, warning.title, content.audio))
    return held


def _airable(bulletin: Bulletin, schedule: Schedule, slot: datetime) -> bool:
    try:
        bulletin_service.airable(bulletin, CommandClass(schedule.cls), slot)
    except Conflict:
        return False
    return True


def _digest(plays: list[_Play], library: str) -> str:
    """`library`: the standard warnings' part, the same for every cluster ("" without)."""
    content = [
        (
            p.item_id,
            p.expires_at.isoformat(),
            p.schedule.cls,
            p.schedule.title,
            p.audio.main.sha256 if p.audio else None,
            p.bulletin.stream_url,
            p.image.sha256 if p.image else None,
            p.bulletin.body,
        )
        for p in sorted(plays, key=lambda p: (p.starts_at, p.item_id))
    ]
    text = json.dumps(content)
    if library:
        # Without a library the digest is what it was before warnings existed, so adding
        # the feature pushes nobody a document that did not change.
        text = f"[{text}, {library}]"
    return hashlib.sha256(text.encode()).hexdigest()


def _held_warning(held: _Held, target: Target, url_for: UrlFor) -> HeldWarning:
    # Signed for this cluster until the document's valid_until, and never `data`: the
    # device fetches each in the background (docs/protocol.md 11.1).
    return HeldWarning(id=held.id, title=held.title, media=media_ref(held.audio, target, url_for))


def _item(play: _Play, code: str, settings: Settings) -> ScheduleItem:
    target = Target(cluster=code)  # its URLs open nothing for another cluster
    url_for = url_signer(settings.media_url, play.expires_at)

    schedule, bulletin = play.schedule, play.bulletin
    return ScheduleItem.model_validate(
        {
            "id": play.item_id,
            "starts_at": play.starts_at,
            "expires_at": play.expires_at,
            "class": CommandClass(schedule.cls),
            "level": schedule.level,
            "title": schedule.title,
            "media": media_ref(play.audio, target, url_for) if play.audio else None,
            "stream": (
                StreamRef(
                    url=bulletin.stream_url,
                    starts_at=play.starts_at,
                    ends_at=play.starts_at + timedelta(seconds=play.length_s),
                )
                if bulletin.stream_url
                else None
            ),
            "display": Display(
                title=schedule.title,
                body=bulletin.body or "",
                image=(media_ref(MediaSet(play.image), target, url_for) if play.image else None),
                duration_s=play.length_s,
                style=DisplayStyle(schedule.cls),
                language=bulletin.language,
            ),
        }
    )


async def push_schedules(
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    settings: Settings,
    writing: Writing,
    publish: Publish,
) -> int:
    """Push a new version to every cluster whose next hours changed; how many."""
    now = clock.now()
    began = time.perf_counter()
    async with session_scope(sessions) as session:
        plays = await _plays_by_cluster(session, settings, now)
        library = await _library(session, settings)
        query: Select[int, str, int, str | None] = select(
            Cluster.id, Cluster.code, Cluster.schedule_version, Cluster.schedule_digest
        )
        if not library:  # else every cluster holds a document: the warnings
            query = query.where(
                (Cluster.id.in_(list(plays))) | Cluster.schedule_digest.is_not(None)
            )
        rows = (await session.execute(query)).all()
    library_key = json.dumps([h.digest_key() for h in library]) if library else ""
    changed: list[tuple[int, str, int, str, list[_Play]]] = []
    # Versions are milliseconds of the clock (and always above the last): unique across a
    # database restored from backup or reset, so a cluster never mistakes a new document
    # for the one it holds.
    stamp = int(now.timestamp() * 1000)
    for cid, code, version, digest in rows:
        mine = plays.get(cid, [])
        new_digest = _digest(mine, library_key)
        if new_digest != digest:
            changed.append((cid, code, max(version + 1, stamp), new_digest, mine))
    if not changed:
        return 0
    async with writing() as session:
        table = Cluster.__table__
        assert isinstance(table, Table)
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(
                schedule_version=bindparam("v"),
                schedule_digest=bindparam("d"),
                schedule_pushed_at=bindparam("at"),
            )
        )
        await session.execute(
            statement, [{"_id": cid, "v": v, "d": d, "at": now} for cid, _, v, d, _ in changed]
        )
    valid_until = now + timedelta(hours=settings.schedule_push_hours)
    held_url_for = url_signer(settings.media_url, valid_until)
    messages = [
        Outgoing(
            protocol.schedule_topic(code),
            settings.signer.sign_json(
                protocol.wire_object(
                    ScheduleDoc(
                        cluster=code,
                        version=version,
                        generated_at=now,
                        valid_until=valid_until,
                        items=tuple(
                            _item(p, code, settings)
                            for p in sorted(mine, key=lambda p: p.starts_at)
                        ),
                        warnings=tuple(
                            _held_warning(h, Target(cluster=code), held_url_for) for h in library
                        ),
                    )
                )
            ),
            retain=True,
        )
        for _, code, version, _, mine in changed
    ]
    # Committed before published, so a version number is never published twice with
    # different content. If the broker does not take them, the digests are cleared and the
    # next run pushes again (with a newer version); meanwhile those clusters show as out
    # of date, which is what the technicians' view is for.
    try:
        await publish(messages)
    except Exception:
        async with writing() as session:
            await session.execute(
                update(Cluster)
                .where(Cluster.id.in_([cid for cid, *_ in changed]))
                .values(schedule_digest=None)
            )
        raise
    log.info(
        "pushed %d schedule documents (%d clusters with plays) in %.2f s",
        len(messages),
        len(plays),
        time.perf_counter() - began,
    )
    return len(messages)
