"""What every fault scenario checks afterwards: nothing lost, nothing played twice, and
the record of who confirmed when complete."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.models import Broadcast, Delivery, DeliveryEvent
from core.database import create_session_maker
from devices.models import Cluster
from simulator.fleet import Fleet

CONFIRMING = ("delivered", "playing", "played")


async def records(
    engine: AsyncEngine, broadcast_id: str
) -> tuple[Broadcast, dict[str, Delivery], dict[str, list[DeliveryEvent]]]:
    """The broadcast, its deliveries by cluster code, and each delivery's events in order."""
    async with create_session_maker(engine)() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        rows = (
            await session.execute(
                select(Cluster.code, Delivery)
                .join(Cluster, Cluster.id == Delivery.cluster_id)
                .where(Delivery.broadcast_id == broadcast_id)
            )
        ).all()
        deliveries = {code: d for code, d in rows}
        by_id = {d.id: code for code, d in rows}
        events: dict[str, list[DeliveryEvent]] = defaultdict(list)
        for event in (
            await session.scalars(
                select(DeliveryEvent)
                .where(DeliveryEvent.delivery_id.in_(list(by_id)))
                .order_by(DeliveryEvent.at, DeliveryEvent.id)
            )
        ).all():
            events[by_id[event.delivery_id]].append(event)
    return broadcast, deliveries, events


async def assert_nothing_lost(
    engine: AsyncEngine,
    broadcast_id: str,
    fleet: Fleet,
    reachable: Iterable[str],
    *,
    until: datetime,
) -> None:
    """Every reachable cluster confirmed and played the broadcast exactly once; its
    delivery carries when it was confirmed and when it finished, by the control plane's
    clock, in order, between the request and `until`; its events say each stage once.
    (When it started is known only if its `playing` acknowledgement arrived: a lost one
    is implied by `played`, but its time is not made up.)"""
    broadcast, deliveries, events = await records(engine, broadcast_id)
    plays = fleet.play_counts(broadcast_id)
    for code in reachable:
        delivery = deliveries[code]
        assert delivery.state == "played", (code, delivery.state, delivery.reason)
        assert plays[code] == 1, (code, plays[code])
        assert delivery.delivered_at and delivery.played_at, code
        started = delivery.playing_at or delivery.played_at
        assert (
            broadcast.created_at <= delivery.delivered_at <= started <= delivery.played_at <= until
        ), (code, broadcast.created_at, delivery.delivered_at, started, delivery.played_at, until)
        stages = Counter(e.state for e in events[code])
        assert stages["played"] == 1, (code, stages)
        assert all(stages[s] <= 1 for s in CONFIRMING), (code, stages)
    assert all(n <= 1 for n in plays.values()), "no cluster played it twice"
