"""A CAP 1.2 alert as plain data, read from an element already valid against the schema
(so required elements are there and enumerations hold)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from lxml import etree

from cap.parsing import NS

_Q = f"{{{NS}}}"


def _text(parent: etree._Element, name: str) -> str | None:
    found = parent.find(_Q + name)
    return found.text.strip() if found is not None and found.text else None


def _all(parent: etree._Element, name: str) -> list[str]:
    return [e.text.strip() for e in parent.findall(_Q + name) if e.text and e.text.strip()]


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class CapStatus(StrEnum):
    """An alert's `status` (CAP 1.2 3.2.1.5), as the schema spells it."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class MsgType(StrEnum):
    """An alert's `msgType` (CAP 1.2 3.2.1.6)."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


@dataclass(frozen=True)
class Area:
    description: str
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)  # (lat, lon)
    circles: list[tuple[float, float, float]] = field(default_factory=list)  # lat, lon, km
    geocodes: list[tuple[str, str]] = field(default_factory=list)  # (valueName, value)


@dataclass(frozen=True)
class Info:
    language: str
    categories: list[str]
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str | None
    description: str | None
    instruction: str | None
    expires: datetime | None
    sender_name: str | None
    areas: list[Area]
    topic: str | None = None  # the library's topic when the sender names it (JSON form)

    def spoken_text(self) -> str:
        """What is read aloud and shown: headline, description, instruction."""
        parts = [p for p in (self.headline, self.description, self.instruction) if p]
        return "\n".join(parts) or self.event


@dataclass(frozen=True)
class Alert:
    identifier: str
    sender: str
    sent: datetime
    sent_text: str  # as written: references quote it character for character
    status: str  # a CapStatus: valid against the schema
    msg_type: str  # a MsgType
    scope: str
    note: str | None
    references: list[tuple[str, str, str]]  # (sender, identifier, sent) each
    infos: list[Info]

    @property
    def key(self) -> str:
        """How CAP names a message in `references`: sender,identifier,sent."""
        return f"{self.sender},{self.identifier},{self.sent_text}"


def _polygon(text: str) -> list[tuple[float, float]]:
    points = []
    for pair in text.split():
        lat, lon = pair.split(",")
        points.append((float(lat), float(lon)))
    return points


def _circle(text: str) -> tuple[float, float, float]:
    centre, radius = text.split()
    lat, lon = centre.split(",")
    return float(lat), float(lon), float(radius)


def _area(element: etree._Element) -> Area:
    return Area(
        description=_text(element, "areaDesc") or "",
        polygons=[_polygon(p) for p in _all(element, "polygon")],
        circles=[_circle(c) for c in _all(element, "circle")],
        geocodes=[
            (_text(g, "valueName") or "", _text(g, "value") or "")
            for g in element.findall(_Q + "geocode")
        ],
    )


def _info(element: etree._Element) -> Info:
    return Info(
        language=_text(element, "language") or "en-US",  # CAP's default
        categories=_all(element, "category"),
        event=_text(element, "event") or "",
        urgency=_text(element, "urgency") or "Unknown",
        severity=_text(element, "severity") or "Unknown",
        certainty=_text(element, "certainty") or "Unknown",
        headline=_text(element, "headline"),
        description=_text(element, "description"),
        instruction=_text(element, "instruction"),
        expires=_when(_text(element, "expires")),
        sender_name=_text(element, "senderName"),
        areas=[_area(a) for a in element.findall(_Q + "area")],
    )


def _references(text: str | None) -> list[tuple[str, str, str]]:
    found = []
    for item in (text or "").split():
        parts = item.split(",")
        if len(parts) == 3:
            found.append((parts[0], parts[1], parts[2]))
    return found


def read(root: etree._Element) -> Alert:
    sent_text = _text(root, "sent") or ""  # required by the schema
    return Alert(
        identifier=_text(root, "identifier") or "",
        sender=_text(root, "sender") or "",
        sent=datetime.fromisoformat(sent_text),
        sent_text=sent_text,
        status=_text(root, "status") or "",
        msg_type=_text(root, "msgType") or "",
        scope=_text(root, "scope") or "",
        note=_text(root, "note"),
        references=_references(_text(root, "references")),
        infos=[_info(i) for i in root.findall(_Q + "info")],
    )
