"""Plays a cluster made from its stored schedule, reported when its link came back.

Each report is kept (LocalPlay) and, where the slot was fired, turned into an ordinary
acknowledgement of that broadcast's command, so the delivery moves to PLAYED through the
same state machine (an expired delivery stays expired: the record of the play is the
LocalPlay row).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast.models import Broadcast
from devices import repository as device_repository
from schedules.models import LocalPlay, ScheduleFiring
from wire import protocol
from wire.protocol import Ack

parse_item = protocol.parse_item


async def record(session: AsyncSession, reports: list[Ack], *, now: datetime) -> list[Ack | None]:
    """Keep the reports; for each, in order, the acknowledgement it stands for (None
    where the slot was never fired)."""
    clusters = await device_repository.ids_by_code(session, {r.cluster for r in reports})
    slots = {r.item: parse_item(r.item) for r in reports if r.item}
    wanted = [s for s in slots.values() if s is not None]
    fired: dict[tuple[str, datetime], tuple[str, str]] = {}
    if wanted:
        rows = await session.execute(
            select(
                ScheduleFiring.schedule_id,
                ScheduleFiring.slot_at,
                Broadcast.id,
                Broadcast.command_id,
            )
            .join(Broadcast, ScheduleFiring.broadcast_id == Broadcast.id)
            .where(tuple_(ScheduleFiring.schedule_id, ScheduleFiring.slot_at).in_(wanted))
        )
        fired = {(sid, slot): (bid, cmd) for sid, slot, bid, cmd in rows.all()}
    rows_known = await session.execute(
        select(LocalPlay.cluster_id, LocalPlay.item).where(
            LocalPlay.cluster_id.in_(list(clusters.values())), LocalPlay.item.in_(list(slots))
        )
    )
    known = {(cid, item) for cid, item in rows_known.all()}
    acks: list[Ack | None] = []
    for report in reports:
        cid, item = clusters.get(report.cluster), report.item or ""
        slot = slots.get(item)
        if cid is None or slot is None:
            acks.append(None)
            continue
        broadcast = fired.get(slot)
        if (cid, item) not in known:
            known.add((cid, item))
            session.add(
                LocalPlay(
                    cluster_id=cid,
                    item=item,
                    schedule_id=slot[0],
                    slot_at=slot[1],
                    started_at=report.at,
                    reported_at=now,
                    broadcast_id=broadcast[0] if broadcast else None,
                )
            )
        acks.append(
            report.model_copy(update={"broadcast": broadcast[0], "cmd": broadcast[1]})
            if broadcast is not None
            else None
        )
    await session.flush()
    return acks
