"""CAP from feeds (polled), and delivery outcomes posted back upstream as CAP Acks.

A feed is a CAP alert itself, or an Atom or RSS 2.0 index whose entries link to CAP
alerts (the form national weather services publish). Each alert fetched goes through
`intake.receive` like a POSTed one; an alert already acted on is recognised there by its
(sender, identifier, sent) and not acted on twice, and entries already read are not even
fetched again.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import httpx
from lxml import etree
from sqlalchemy import or_, select

from broadcast.context import Sending
from broadcast.models import Broadcast, Delivery
from broadcast.states import TERMINAL, BroadcastStatus
from cap import export, intake
from cap.models import JSON_SOURCE, CapMessage, CapOutcome
from cap.schemas import CapFeedResult
from core.database import session_scope

log = logging.getLogger("cap.feeds")

ATOM = "http://www.w3.org/2005/Atom"
FETCH_TIMEOUT_S = 20.0
MAX_FEED_BYTES = 5_000_000


def _entry_links(feed: bytes) -> list[str] | None:
    """The alert URLs an Atom or RSS index lists; None when `feed` is not an index."""
    try:
        root = etree.fromstring(
            feed, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        )
    except etree.XMLSyntaxError:
        return None
    if root.tag == f"{{{ATOM}}}feed":
        links = []
        for entry in root.findall(f"{{{ATOM}}}entry"):
            chosen = [
                link.get("href")
                for link in entry.findall(f"{{{ATOM}}}link")
                if link.get("type") in ("application/cap+xml", "application/xml")
                or link.get("rel", "alternate") == "alternate"
            ]
            links += [href for href in chosen[:1] if href]
        return links
    if root.tag == "rss":
        return [link.strip() for item in root.iter("item") if (link := item.findtext("link"))]
    return None


async def poll(runtime: Sending, seen: set[str]) -> list[CapFeedResult]:
    """Read every configured feed once; `seen` remembers entries already received."""
    results = []
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=True) as client:
        for feed in runtime.settings.cap_feeds:
            try:
                results.append(await _poll_one(runtime, client, feed, seen))
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("CAP feed %s unreadable: %s", feed, exc)
                results.append(CapFeedResult(feed=feed, read=0, new=0, error=str(exc)))
    return results


async def _fetch(client: httpx.AsyncClient, url: str) -> bytes:
    response = await client.get(url, headers={"accept": "application/cap+xml, application/xml"})
    response.raise_for_status()
    if len(response.content) > MAX_FEED_BYTES:
        raise ValueError(f"{url}: {len(response.content)} bytes, more than a feed should be")
    return response.content


async def _poll_one(
    runtime: Sending, client: httpx.AsyncClient, feed: str, seen: set[str]
) -> CapFeedResult:
    body = await _fetch(client, feed)
    links = _entry_links(body)
    if links is None:  # the feed is one alert
        version = f"{feed}#{hashlib.sha256(body).hexdigest()}"
        if version in seen:
            return CapFeedResult(feed=feed, read=1, new=0)
        outcome = await intake.receive(runtime, body, source=feed)
        if outcome.message.outcome != CapOutcome.REJECTED:
            seen.add(version)
        return CapFeedResult(feed=feed, read=1, new=int(not outcome.duplicate))
    new = 0
    for link in links:
        url = str(httpx.URL(feed).join(link))
        if url in seen:
            continue
        outcome = await intake.receive(runtime, await _fetch(client, url), source=url)
        if outcome.message.outcome != CapOutcome.REJECTED:
            seen.add(url)  # a refused one is read again: the agency may correct it
        new += int(not outcome.duplicate)
    return CapFeedResult(feed=feed, read=len(links), new=new)


async def _finished(runtime: Sending, message: CapMessage, now: datetime) -> bool:
    """Has what the message became run its course: every delivery has an outcome, or the
    broadcast is over? (A message that aired nothing is finished at once.)"""
    if message.broadcast_id is None:
        return True
    async with session_scope(runtime.sessions) as session:
        broadcast = await session.get(Broadcast, message.broadcast_id)
        if (
            broadcast is None
            or broadcast.status != BroadcastStatus.ACTIVE
            or broadcast.expires_at <= now
        ):
            return True
        open_delivery = await session.scalar(
            select(Delivery.id)
            .where(
                Delivery.broadcast_id == message.broadcast_id,
                Delivery.state.not_in([s.value for s in TERMINAL]),
            )
            .limit(1)
        )
        return open_delivery is None


async def send_acks(runtime: Sending) -> int:
    """Post a CAP Ack to `CAP_ACK_URL` for each message whose outcome is known and not yet
    reported; a failed post is tried again at the next round. How many were sent."""
    url = runtime.settings.cap_ack_url
    if not url:
        return 0
    now = runtime.clock.now()
    async with session_scope(runtime.sessions) as session:
        waiting = (
            await session.scalars(
                select(CapMessage).where(
                    CapMessage.ack_sent_at.is_(None),
                    CapMessage.source != JSON_SOURCE,  # JSON senders read the record
                    CapMessage.identifier.is_not(None),
                    or_(CapMessage.outcome != CapOutcome.REJECTED, CapMessage.sender.is_not(None)),
                )
            )
        ).all()
    sent = 0
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S) as client:
        for message in waiting:
            if not await _finished(runtime, message, now):
                continue
            async with session_scope(runtime.sessions) as session:
                body = await export.ack(session, runtime.settings, message, now)
            try:
                response = await client.post(
                    url, content=body, headers={"content-type": "application/cap+xml"}
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("CAP Ack for %s not delivered to %s: %s", message.id, url, exc)
                continue
            async with runtime.writing() as session:
                stored = await session.get(CapMessage, message.id)
                if stored is not None:
                    stored.ack_sent_at = now
            sent += 1
    return sent
