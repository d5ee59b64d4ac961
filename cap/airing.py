"""What an accepted CAP alert becomes (docs/cap.md); receiving it is cap/intake.py.

An alert's areas (geocodes, polygons, circles) become clusters; its urgency, severity and
certainty a Circular 39 class; its texts, in every language a voice here speaks, one
spoken clip; it arrives as an approved bulletin from the central level. Emergency and
priority alerts go on air at once (and the communes' inboxes record it); normal ones wait
in each commune's inbox. Exercise and Test become drills, marked everywhere. Update
replaces the broadcast it references; Cancel stops it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from areas.models import Area
from broadcast import sending
from broadcast import service as broadcast_service
from broadcast.context import Sending
from broadcast.models import Broadcast
from broadcast.schemas import BroadcastCreate
from broadcast.states import BroadcastStatus
from bulletins import airing as bulletin_airing
from bulletins import service as bulletin_service
from bulletins.models import Bulletin, InboxItem
from bulletins.schemas import BulletinCreate
from bulletins.workflow import Action, InboxStatus, Status
from cap import mapping
from cap.message import Alert, Info, MsgType
from cap.models import CapMessage, CapOutcome
from core.actors import Actor, Role
from core.database import session_scope
from devices.models import Cluster
from media.tts import speech
from wire.protocol import CommandClass, SenderLevel

log = logging.getLogger("cap")

# CAP categories to the library's topics (bulletins/ TOPICS).
TOPIC_OF_CATEGORY = {
    "Met": "weather",
    "Geo": "disaster",
    "Fire": "disaster",
    "Env": "disaster",
    "Health": "health",
    "Safety": "security",
    "Security": "security",
    "Rescue": "disaster",
}


def gateway_actor(sender: str) -> Actor:
    """Who the record says sent what a CAP message became."""
    return Actor(f"cap:{sender}"[:100], Role.GATEWAY)


async def store(runtime: Sending, message: CapMessage) -> None:
    """Keep the message with its outcome, in a write scope of its own."""
    async with runtime.writing() as session:
        session.add(message)


async def ignore(runtime: Sending, message: CapMessage, reason: str) -> None:
    """Keep the message as ignored, saying why."""
    message.outcome, message.reason = CapOutcome.IGNORED, reason
    await store(runtime, message)


async def act_on(runtime: Sending, alert: Alert, message: CapMessage) -> None:
    """What an accepted alert does: an Update or Cancel first stops the broadcasts and
    withdraws the inbox offers of the messages it references; a Cancel stops there, an
    Alert or Update airs (or is held for a voice)."""
    stopped, withdrawn, retired = [], 0, []
    if alert.msg_type != MsgType.ALERT:
        referenced = await _referenced(runtime, alert)
        stopped = await _stop(runtime, alert, referenced.broadcasts)
        withdrawn = await _withdraw_waiting(runtime, alert, referenced.bulletins)
        retired = await _retire_held(runtime, alert, referenced.bulletins)
    done = [f"cancelled {len(stopped)} broadcast(s): {', '.join(stopped)}"] if stopped else []
    if withdrawn:
        done.append(f"withdrew {withdrawn} inbox item(s) still waiting in the communes")
    if retired:
        done.append(f"archived the held bulletin(s) {', '.join(retired)}, no longer to voice")
    if alert.msg_type == MsgType.CANCEL:
        if not done:
            return await ignore(runtime, message, "cancels nothing that aired or waits here")
        message.outcome, message.reason = CapOutcome.ACCEPTED, "; ".join(done)
        return await store(runtime, message)
    await _air(runtime, alert, message, replaced=stopped, withdrawn=withdrawn)


@dataclass(frozen=True)
class _Referenced:
    """What became of the messages an Update or Cancel names."""

    broadcasts: list[str]  # still active: to stop
    bulletins: list[str]  # whose inbox items may still wait: to withdraw


async def _referenced(runtime: Sending, alert: Alert) -> _Referenced:
    """The messages an Update or Cancel names, its own sender's only (a trusted signer
    cannot withdraw another agency's warning): one query for both things it undoes."""
    keys = {(s, i, t) for s, i, t in alert.references if s == alert.sender}
    if not keys:
        return _Referenced([], [])
    async with session_scope(runtime.sessions) as session:
        rows = await session.execute(
            select(
                CapMessage.sender,
                CapMessage.identifier,
                CapMessage.sent,
                CapMessage.bulletin_id,
                Broadcast.id,
                Broadcast.status,
                Broadcast.expires_at,
            )
            .outerjoin(Broadcast, CapMessage.broadcast_id == Broadcast.id)
            .where(CapMessage.identifier.in_({i for _, i, _ in keys}))
        )
        now = runtime.clock.now()
        found = [row for row in rows if (row[0], row[1], row[2]) in keys]
    return _Referenced(
        broadcasts=[
            b for *_, b, status, until in found if status == BroadcastStatus.ACTIVE and until > now
        ],
        bulletins=[bulletin for _, _, _, bulletin, *_ in found if bulletin is not None],
    )


async def _stop(runtime: Sending, alert: Alert, broadcast_ids: list[str]) -> list[str]:
    """Cancel the still-active broadcasts; the ids stopped."""
    for broadcast_id in broadcast_ids:
        async with runtime.writing() as session:
            broadcast = await broadcast_service.cancel(
                session=session,
                clock=runtime.clock,
                settings=runtime.settings,
                broadcast_id=broadcast_id,
                actor=gateway_actor(alert.sender),
            )
        await runtime.require_dispatcher().publish_cancel(broadcast)
    return broadcast_ids


async def _withdraw_waiting(runtime: Sending, alert: Alert, bulletins: list[str]) -> int:
    """Withdraw the inbox items of those bulletins that still wait for a commune's
    decision: a cancelled warning must not be aired by a commune afterwards. How many
    were withdrawn."""
    if not bulletins:
        return 0
    now = runtime.clock.now()
    note = (
        "cancelled by its issuer" if alert.msg_type == MsgType.CANCEL else "replaced by an update"
    )
    async with runtime.writing() as session:
        waiting = (
            await session.scalars(
                select(InboxItem).where(
                    InboxItem.bulletin_id.in_(bulletins), InboxItem.status == InboxStatus.PENDING
                )
            )
        ).all()
        for item in waiting:
            item.status, item.handled_at = InboxStatus.WITHDRAWN, now
            item.handled_by = gateway_actor(alert.sender).name
            item.note = f"{note}: CAP {alert.key}"[:500]
        return len(waiting)


async def _retire_held(runtime: Sending, alert: Alert, bulletins: list[str]) -> list[str]:
    """A held alert (no voice here speaks it) waits as a submitted bulletin for the duty
    officer to voice, and an emergency may air from there: once its issuer cancels or
    replaces it, it is withdrawn and archived through the bulletin workflow (its own
    author, the gateway, may do both), so it leaves the red banner and cannot air. The
    ids archived."""
    if not bulletins:
        return []
    actor = gateway_actor(alert.sender)
    note = "cancelled by its issuer" if alert.msg_type == MsgType.CANCEL else "replaced"
    async with runtime.writing() as session:
        held = (
            await session.scalars(
                select(Bulletin.id)
                .join(CapMessage, CapMessage.bulletin_id == Bulletin.id)
                .where(
                    Bulletin.id.in_(bulletins),
                    Bulletin.status == Status.SUBMITTED,
                    CapMessage.outcome == CapOutcome.HELD,
                )
            )
        ).all()
        for bulletin_id in held:
            for action in (Action.WITHDRAW, Action.ARCHIVE):
                await bulletin_service.transition(
                    session=session,
                    clock=runtime.clock,
                    actor=actor,
                    bulletin_id=bulletin_id,
                    action=action,
                    note=f"{note}: CAP {alert.key}"[:500],
                )
    return list(held)


@dataclass
class _Targets:
    areas: list[str]
    clusters: list[str]
    communes: list[Area]
    unknown: list[str]


async def _targets(session: AsyncSession, alert: Alert) -> _Targets:
    areas = [a for info in alert.infos for a in info.areas]
    codes = list(dict.fromkeys(mapping.area_codes(areas)))
    known = dict(
        (await session.execute(select(Area.code, Area.path).where(Area.code.in_(codes)))).all()
    )
    inside: list[str] = []
    if any(a.polygons or a.circles for a in areas):  # else no position need be read
        positions = await session.execute(
            select(Cluster.code, Cluster.latitude, Cluster.longitude).where(
                Cluster.latitude.is_not(None), Cluster.longitude.is_not(None)
            )
        )
        placed = [(c, lat, lon) for c, lat, lon in positions if lat is not None and lon is not None]
        inside = mapping.clusters_inside(areas, placed)
    communes = await _communes_of(session, list(known.values()), inside)
    return _Targets(
        areas=[c for c in codes if c in known],
        clusters=inside,
        communes=communes,
        unknown=[c for c in codes if c not in known],
    )


async def _communes_of(session: AsyncSession, paths: list[str], clusters: list[str]) -> list[Area]:
    """The communes an alert reaches: under its areas, or holding its clusters."""
    found: dict[int, Area] = {}
    for path in paths:
        query = select(Area).where(
            Area.path.startswith(path, autoescape=True), Area.level == bulletin_airing.COMMUNE
        )
        found.update({a.id: a for a in (await session.scalars(query)).all()})
    if clusters:
        cluster_paths = (
            await session.scalars(
                select(Area.path)
                .join(Cluster, Cluster.area_id == Area.id)
                .where(Cluster.code.in_(clusters))
            )
        ).all()
        # A cluster's commune is the commune among its area's ancestors (or the area).
        ancestors = {
            "/" + "/".join(codes[:k]) + "/"
            for codes in (p.strip("/").split("/") for p in cluster_paths)
            for k in range(1, len(codes) + 1)
        }
        query = select(Area).where(Area.path.in_(ancestors), Area.level == bulletin_airing.COMMUNE)
        found.update({a.id: a for a in (await session.scalars(query)).all()})
    return sorted(found.values(), key=lambda a: a.code)


def _in_order(infos: list[Info]) -> list[Info]:
    """Vietnamese first: the province's listeners, then the other languages."""
    return sorted(infos, key=lambda i: 0 if i.language.lower().startswith("vi") else 1)


def _speech(runtime: Sending, alert: Alert, drill: bool) -> tuple[list[tuple[str, str]], list[str]]:
    """(text, voice) for each info a voice here speaks, and the languages none does."""
    voices = speech.engine_for(runtime.settings).languages
    parts, unspoken = [], []
    for info in _in_order(alert.infos):
        voice = mapping.engine_language(info.language, voices)
        if voice is None:
            unspoken.append(info.language)
            continue
        intro = speech.drill_sentence(voice) if drill else ""
        parts.append(((intro + " " + info.spoken_text()).strip()[:4500], voice))
    return parts, unspoken


async def _air(
    runtime: Sending, alert: Alert, message: CapMessage, replaced: list[str], withdrawn: int = 0
) -> None:
    now = runtime.clock.now()
    if not alert.infos:
        return await ignore(runtime, message, "no info block: nothing to say")
    expiries = [i.expires for i in alert.infos if i.expires is not None]
    expires_at = min(expiries) if expiries else None
    if expires_at is not None and expires_at <= now:
        return await ignore(runtime, message, f"expired at {expires_at.isoformat()}")
    cls = mapping.highest(mapping.bulletin_class(i) for i in alert.infos)
    longest = now + timedelta(seconds=runtime.settings.max_validity_s[cls.value])
    if expires_at is not None and expires_at > longest:
        expires_at = longest  # an alert "valid until 2099" stays valid as long as its class may
    async with session_scope(runtime.sessions) as session:
        targets = await _targets(session, alert)
        root = await session.scalar(select(Area).where(Area.parent_id.is_(None)))
    notes = [f"unknown area codes: {', '.join(targets.unknown)}"] if targets.unknown else []
    if withdrawn:
        notes.append(f"replaces {withdrawn} inbox item(s) still waiting")
    if not targets.areas and not targets.clusters:
        return await ignore(runtime, message, "; ".join(["no area of this province", *notes]))
    parts, unspoken = _speech(runtime, alert, message.drill)
    if unspoken:
        notes.append(f"no voice for {', '.join(unspoken)}: shown on e-boards only")
    if not parts:
        return await _hold(runtime, alert, message, cls, root, unspoken, targets, expires_at)
    clip = await speech.speak_parts(runtime.ingest_context(), parts)
    first = _in_order(alert.infos)[0]
    title = (first.headline or first.event)[:300]
    body = "\n\n".join(i.spoken_text() for i in _in_order(alert.infos))[:5000]
    actor = gateway_actor(alert.sender)
    async with runtime.writing() as session:
        bulletin = await _approved_bulletin(
            runtime, session, actor, alert, first, title, body, clip.sha256, cls, root
        )
        bulletin_id = message.bulletin_id = bulletin.id
        if cls is CommandClass.NORMAL:  # the commune decides: its inbox
            session.add_all(_inbox(bulletin, targets.communes, actor, cls, now, expires_at, None))
            message.outcome, message.reason = (
                CapOutcome.ACCEPTED,
                "; ".join([f"in the inbox of {len(targets.communes)} commune(s)", *notes]),
            )
            session.add(message)
            return None

    async def record(session: AsyncSession, broadcast: Broadcast) -> None:
        aired = await bulletin_service.get(session=session, bulletin_id=bulletin_id)
        session.add_all(
            _inbox(aired, targets.communes, actor, cls, now, broadcast.expires_at, broadcast.id)
        )
        message.broadcast_id, message.outcome = broadcast.id, CapOutcome.ACCEPTED
        replacing = [f"replaces {', '.join(replaced)}"] if replaced else []
        message.reason = "; ".join([f"aired as {cls.value}", *replacing, *notes]) or None
        session.add(message)

    await sending.send(
        runtime,
        BroadcastCreate.model_validate(
            {
                "title": title,
                "class": cls,
                "level": SenderLevel.CENTRAL,
                "areas": targets.areas,
                "clusters": targets.clusters,
                "bulletin_id": bulletin_id,
                "expires_at": expires_at,
                "drill": message.drill,
            }
        ),
        actor,
        also=record,
    )
    return None


async def _hold(
    runtime: Sending,
    alert: Alert,
    message: CapMessage,
    cls: CommandClass,
    root: Area | None,
    unspoken: list[str],
    targets: _Targets,
    expires_at: datetime | None,
) -> None:
    """An alert no voice here speaks (German only, French only): never dropped. Its text
    goes up at once on the e-boards of its areas (a display-only broadcast, which a Cancel
    or an Update takes down like any other), and it is kept as a bulletin submitted to the
    province for the duty officer to record or type a Vietnamese version and send; the
    outcome `held` and an error in the log put it in front of a person (docs/cap.md)."""
    first = _in_order(alert.infos)[0]
    title = f"[{first.language}] {first.headline or first.event}"[:300]
    body = "\n\n".join(i.spoken_text() for i in alert.infos)[:5000] or first.event or title
    actor = gateway_actor(alert.sender)

    async def record(session: AsyncSession, shown: Broadcast | None) -> None:
        bulletin = await _bulletin(
            runtime, session, actor, first, title, body, cls, root, status=Status.SUBMITTED
        )
        message.bulletin_id = bulletin.id
        message.broadcast_id = shown.id if shown is not None else None
        message.outcome = CapOutcome.HELD
        on_screens = "its text on the e-boards" if shown else "no e-board in its areas"
        message.reason = (
            f"{cls.value}: no voice here speaks {', '.join(unspoken)}; {on_screens}; held "
            f"for the duty officer to voice in Vietnamese (bulletin {bulletin.id}, submitted)"
        )
        session.add(message)

    async with session_scope(runtime.sessions) as session:
        screens = await broadcast_service.reach(
            session=session, areas=targets.areas, clusters=targets.clusters
        )
    if screens.eboards:
        shown = BroadcastCreate.model_validate(
            {
                "title": title,
                "class": cls,
                "level": SenderLevel.CENTRAL,
                "areas": targets.areas,
                "clusters": targets.clusters,
                "text": body,
                "language": first.language,
                "display_only": True,
                "expires_at": expires_at,
                "drill": message.drill,
            }
        )
        await sending.send(runtime, shown, actor, also=record)
    else:
        async with runtime.writing() as session:
            await record(session, None)
    log.error("CAP %s from %s held: %s", alert.identifier, alert.sender, message.reason)


async def _approved_bulletin(
    runtime: Sending,
    session: AsyncSession,
    actor: Actor,
    alert: Alert,
    first: Info,
    title: str,
    body: str,
    media_sha256: str,
    cls: CommandClass,
    root: Area | None,
) -> Bulletin:
    """The alert in the library, approved by its issuer (a national authority's alert is
    not re-edited by the province; the record says who approved it and how)."""
    bulletin = await _bulletin(
        runtime, session, actor, first, title, body, cls, root, media_sha256=media_sha256
    )
    bulletin_service.record(
        session,
        bulletin,
        action="approve",
        from_status=Status.SUBMITTED.value,
        actor=actor,
        at=runtime.clock.now(),
        note=f"approved by its issuer: CAP {alert.key}",
    )
    return bulletin


async def _bulletin(
    runtime: Sending,
    session: AsyncSession,
    actor: Actor,
    first: Info,
    title: str,
    body: str,
    cls: CommandClass,
    root: Area | None,
    *,
    media_sha256: str | None = None,
    status: Status = Status.APPROVED,
) -> Bulletin:
    """The alert as a bulletin of the library, in the topic its category names."""
    topic = first.topic or next(
        (TOPIC_OF_CATEGORY[c] for c in first.categories if c in TOPIC_OF_CATEGORY), None
    )
    return await bulletin_service.create(
        session=session,
        clock=runtime.clock,
        actor=actor,
        data=BulletinCreate.model_validate(
            {
                "title": title,
                "topic": topic or "general",
                "language": first.language[:32],
                "text": body,
                "media_sha256": media_sha256,
                "class": cls,
                "area": root.code if root else None,
            }
        ),
        status=status,
    )


def _inbox(
    bulletin: Bulletin,
    communes: list[Area],
    actor: Actor,
    cls: CommandClass,
    now: datetime,
    expires_at: datetime | None,
    broadcast_id: str | None,
) -> list[InboxItem]:
    """The communes' inbox items, from above the province."""
    return bulletin_airing.inbox_items(
        bulletin=bulletin,
        communes=communes,
        actor=actor,
        cls=cls,
        now=now,
        expires_at=expires_at,
        broadcast_id=broadcast_id,
        level=SenderLevel.CENTRAL,
    )
