"""From a CAP alert to what this system does: the bulletin class, the clusters, the
languages spoken. docs/cap.md states the same rules for the agencies that send to us."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from cap.message import Area, Info
from wire.protocol import CommandClass

# Geocode names whose value is a Vietnamese administrative unit code (General Statistics
# Office, the codes of the area tree).
GEOCODE_NAMES = frozenset({"VN-GSO", "MA-DVHC", "ADMIN-CODE"})
EARTH_RADIUS_KM = 6371.0

_URGENT = {"Immediate"}
_SOON = {"Immediate", "Expected"}
_GRAVE = {"Extreme", "Severe"}
_SERIOUS = {"Extreme", "Severe", "Moderate"}
_LIKELY = {"Observed", "Likely"}


def bulletin_class(info: Info) -> CommandClass:
    """Circular 39's three classes from urgency, severity and certainty:
    - emergency (played at once, over everything): a grave danger (Extreme or Severe)
      that is observed or likely, and immediate, or expected when it is Extreme;
    - priority (ahead of other items): a moderate or grave danger, likely or observed,
      expected soon (Immediate or Expected);
    - normal (the commune decides): everything else (future, minor, possible, unknown).
    """
    u, s, c = info.urgency, info.severity, info.certainty
    if c in _LIKELY and s in _GRAVE and (u in _URGENT or (u == "Expected" and s == "Extreme")):
        return CommandClass.EMERGENCY
    if c in _LIKELY and s in _SERIOUS and u in _SOON:
        return CommandClass.PRIORITY
    return CommandClass.NORMAL


def highest(classes: Iterable[CommandClass]) -> CommandClass:
    order = [CommandClass.NORMAL, CommandClass.PRIORITY, CommandClass.EMERGENCY]
    return max(classes, key=order.index, default=CommandClass.NORMAL)


def engine_language(language: str, speakable: Iterable[str]) -> str | None:
    """The text-to-speech voice for a CAP language tag: the tag itself, else its primary
    subtag (en-US is read by the `en` voice); None when no voice speaks it."""
    voices = {v.lower(): v for v in speakable}
    tag = language.strip()
    return voices.get(tag.lower()) or voices.get(tag.split("-")[0].lower())


def area_codes(areas: Sequence[Area]) -> list[str]:
    return [
        value.strip()
        for area in areas
        for name, value in area.geocodes
        if name.strip().upper() in GEOCODE_NAMES and value.strip()
    ]


def inside_polygon(lat: float, lon: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Ray casting in latitude/longitude: right for areas of a province's size, where the
    earth's curve does not move a boundary by more than metres."""
    inside = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        (lat_i, lon_i), (lat_j, lon_j) = polygon[i], polygon[j]
        if (lon_i > lon) != (lon_j > lon):
            crossing = (lat_j - lat_i) * (lon - lon_i) / (lon_j - lon_i) + lat_i
            if lat < crossing:
                inside = not inside
        j = i
    return inside


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def clusters_inside(
    areas: Sequence[Area], positions: Iterable[tuple[str, float, float]]
) -> list[str]:
    """The clusters (code, lat, lon) inside any polygon or circle of the areas."""
    shapes = [(a.polygons, a.circles) for a in areas if a.polygons or a.circles]
    if not shapes:
        return []
    found = []
    for code, lat, lon in positions:
        for polygons, circles in shapes:
            if any(inside_polygon(lat, lon, p) for p in polygons) or any(
                distance_km(lat, lon, c_lat, c_lon) <= radius for c_lat, c_lon, radius in circles
            ):
                found.append(code)
                break
    return found
