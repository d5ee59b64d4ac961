"""Maps drawn by the page itself as SVG: cluster positions scaled into a box, and each
commune as the outline around its clusters. No tile server and no internet, because
provincial networks are often closed; the outlines come from the clusters' own
positions, so a province needs no boundary data to get a usable map."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAP_W, MAP_H, MAP_PAD = 640, 420, 14
# A commune with one or two clusters (no outline to draw) is a disc this wide.
DOT_R = 9

Point = tuple[float, float]


@dataclass(frozen=True)
class Frame:
    """Longitude across, latitude up, one scale for both so shapes keep their form."""

    south: float
    west: float
    scale: float

    @classmethod
    def around(cls, points: Sequence[Point]) -> Frame:
        lats, lons = [lat for lat, _ in points], [lon for _, lon in points]
        span = max(max(lats) - min(lats), max(lons) - min(lons), 1e-6)
        scale = min(MAP_W - 2 * MAP_PAD, MAP_H - 2 * MAP_PAD) / span
        return cls(south=min(lats), west=min(lons), scale=scale)

    def xy(self, lat: float, lon: float) -> Point:
        return (
            round(MAP_PAD + (lon - self.west) * self.scale, 1),
            round(MAP_H - MAP_PAD - (lat - self.south) * self.scale, 1),
        )


def plot(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clusters (with `lat`, `lon`, `state`) placed in the map's box, bad news last so
    offline and faulty clusters are drawn on top."""
    if not points:
        return []
    frame = Frame.around([(p["lat"], p["lon"]) for p in points])
    order = {"ok": 0, "faulty": 1, "offline": 2}
    placed = []
    for p in sorted(points, key=lambda p: order[p["state"]]):
        x, y = frame.xy(p["lat"], p["lon"])
        placed.append({**p, "x": x, "y": y})
    return placed


def hull(points: Sequence[Point]) -> list[Point]:
    """The convex hull, counter-clockwise (Andrew's monotone chain)."""
    unique = sorted(set(points))
    if len(unique) < 3:
        return unique

    def turn(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    upper: list[Point] = []
    for p in unique:
        while len(lower) >= 2 and turn(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(unique):
        while len(upper) >= 2 and turn(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


@dataclass(frozen=True)
class Shape:
    """One commune on the map: an outline (`points` for an SVG polygon), or a disc at
    (`cx`, `cy`) when its clusters do not enclose an area."""

    code: str
    name: str
    path: str  # the area path, so a chosen district lights up its communes
    clusters: int
    points: str | None
    cx: float
    cy: float


def commune_shapes(clusters: Sequence[tuple[str, str, str, float, float]]) -> list[Shape]:
    """Communes as outlines around their clusters: `clusters` are (area code, area name,
    area path, latitude, longitude), one row per cluster of a commune."""
    if not clusters:
        return []
    frame = Frame.around([(lat, lon) for *_, lat, lon in clusters])
    grouped: dict[tuple[str, str, str], list[Point]] = defaultdict(list)
    for code, name, path, lat, lon in clusters:
        grouped[(code, name, path)].append(frame.xy(lat, lon))
    shapes = []
    for (code, name, path), placed in sorted(grouped.items()):
        outline = hull(placed)
        cx = round(sum(x for x, _ in placed) / len(placed), 1)
        cy = round(sum(y for _, y in placed) / len(placed), 1)
        points = " ".join(f"{x},{y}" for x, y in outline) if len(outline) >= 3 else None
        shapes.append(Shape(code, name, path, len(placed), points, cx, cy))
    return shapes
