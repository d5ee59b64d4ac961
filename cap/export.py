"""Writing CAP 1.2: a broadcast as an alert (for neighbouring provinces, the national
level, archives), and a received alert's delivery outcome as an Ack referencing it.

The class maps back to urgency, severity and certainty so that reading our own alert
gives the same class again (cap/mapping.py); areas go out as `VN-GSO` geocodes.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from lxml import etree
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from areas.models import Area
from broadcast import service as broadcast_service
from broadcast.models import Broadcast
from broadcast.states import BroadcastStatus, DeliveryState
from cap.message import CapStatus, MsgType
from cap.models import CapMessage
from cap.parsing import NS
from core.settings import Settings
from wire.protocol import CommandClass

# (urgency, severity, certainty) per class: what cap/mapping.py reads back as that class.
CAP_OF_CLASS = {
    CommandClass.EMERGENCY: ("Immediate", "Severe", "Observed"),
    CommandClass.PRIORITY: ("Expected", "Moderate", "Likely"),
    CommandClass.NORMAL: ("Future", "Minor", "Possible"),
}
CATEGORY_OF_TOPIC = {
    "weather": "Met",
    "disaster": "Geo",
    "health": "Health",
    "security": "Security",
    "emergency": "Safety",
}


def cap_time(value: datetime, zone: str) -> str:
    """CAP's dateTime: seconds, an explicit offset, never "Z" (the schema's pattern)."""
    return value.astimezone(ZoneInfo(zone)).replace(microsecond=0).isoformat()


def _add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _document(alert: etree._Element) -> bytes:
    return bytes(etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True))


async def broadcast_alert(
    session: AsyncSession, settings: Settings, broadcast_id: str, topic: str | None = None
) -> bytes:
    broadcast: Broadcast = await broadcast_service.get(session=session, broadcast_id=broadcast_id)
    zone = settings.default_timezone
    areas = (await session.scalars(select(Area).where(Area.code.in_(broadcast.target_areas)))).all()
    root = await session.scalar(select(Area).where(Area.parent_id.is_(None)))
    alert = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _add(alert, "identifier", broadcast.id)
    _add(alert, "sender", settings.cap_sender)
    _add(alert, "sent", cap_time(broadcast.created_at, zone))
    _add(alert, "status", CapStatus.EXERCISE if broadcast.drill else CapStatus.ACTUAL)
    _add(alert, "msgType", MsgType.ALERT)
    _add(alert, "scope", "Public")
    if broadcast.status == BroadcastStatus.CANCELED and broadcast.canceled_at is not None:
        _add(alert, "note", f"cancelled at {cap_time(broadcast.canceled_at, zone)}")
    info = _add(alert, "info")
    _add(info, "language", broadcast.language or "vi")
    _add(info, "category", CATEGORY_OF_TOPIC.get(topic or "", "Other"))
    _add(info, "event", broadcast.title)
    urgency, severity, certainty = CAP_OF_CLASS[CommandClass(broadcast.cls)]
    _add(info, "urgency", urgency)
    _add(info, "severity", severity)
    _add(info, "certainty", certainty)
    _add(info, "expires", cap_time(broadcast.expires_at, zone))
    if root is not None:
        _add(info, "senderName", root.name)
    _add(info, "headline", broadcast.title)
    if broadcast.body:
        _add(info, "description", broadcast.body)
    if areas or broadcast.target_clusters:
        area = _add(info, "area")
        names = [a.name for a in areas]
        if broadcast.target_clusters:
            names.append(f"{len(broadcast.target_clusters)} cụm loa")
        _add(area, "areaDesc", ", ".join(names))
        for a in sorted(areas, key=lambda a: a.code):
            geocode = _add(area, "geocode")
            _add(geocode, "valueName", "VN-GSO")
            _add(geocode, "value", a.code)
    return _document(alert)


async def ack(
    session: AsyncSession, settings: Settings, message: CapMessage, now: datetime
) -> bytes:
    """CAP Ack referencing a received alert, its outcome in `note`: what aired, how many
    clusters confirmed and played it, how many stayed silent."""
    note = f"{message.outcome}: {message.reason or ''}".strip().rstrip(":")
    if message.broadcast_id is not None:
        read = await broadcast_service.read(
            session=session, broadcast_id=message.broadcast_id, unconfirmed_limit=0
        )
        played = read.counts.get(DeliveryState.PLAYED, 0)
        note = (
            f"aired to {read.total} clusters: {read.confirmed} confirmed, {played} played, "
            f"{read.unconfirmed_total} not confirmed; broadcast {read.id} is {read.status}"
        )
    zone = settings.default_timezone
    alert = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _add(alert, "identifier", f"{message.id}-ack")
    _add(alert, "sender", settings.cap_sender)
    _add(alert, "sent", cap_time(now, zone))
    drill = message.status in (CapStatus.EXERCISE, CapStatus.TEST)
    _add(alert, "status", message.status if drill else CapStatus.ACTUAL)
    _add(alert, "msgType", MsgType.ACK)
    _add(alert, "scope", "Public")
    _add(alert, "note", note)
    _add(alert, "references", f"{message.sender},{message.identifier},{message.sent}")
    return _document(alert)
