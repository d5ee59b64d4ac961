"""The load test's report as a picture: time to confirmation (the share of clusters
confirmed against seconds since the request, with the bare-MQTT floor) and completion
over time per district, as a small HTML page with SVG charts and the same page as PNG
(photographed by headless Chromium, reports/printing.py)."""

from __future__ import annotations

import asyncio
import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from reports import printing

WIDTH, HEIGHT = 640, 260  # one chart's drawing area, in SVG units
LEFT, BOTTOM, TOP, RIGHT = 44, 28, 10, 16
COLOURS = ("#1f5fa8", "#b3261e", "#2e7d32", "#8e24aa", "#ef6c00", "#00838f", "#5d4037")


def _axes(t_max: float, label: str) -> list[str]:
    parts = [
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
        f'<text x="{WIDTH - 4}" y="{HEIGHT - 4}" text-anchor="end">{html.escape(label)}</text>',
    ]
    for k in range(5):
        share = k / 4
        y = _y(share)
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{k * 25}%</text>')
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH}" y2="{y:.1f}" class="grid"/>')
    for k in range(1, 6):
        t = t_max * k / 5
        x = _x(t, t_max)
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 12}" text-anchor="middle">{t:.2f}</text>')
    return parts


def _x(t: float, t_max: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * min(t, t_max) / t_max


def _y(share: float) -> float:
    return TOP + (HEIGHT - BOTTOM - TOP) * (1 - share)


def _curve(times: list[float], total: int, t_max: float) -> str:
    """A step line: the share of `total` confirmed by each moment."""
    points = [f"{LEFT},{_y(0):.1f}"]
    for n, t in enumerate(sorted(times), start=1):
        x = _x(t, t_max)
        points.append(f"{x:.1f},{_y((n - 1) / total):.1f} {x:.1f},{_y(n / total):.1f}")
    points.append(f"{_x(t_max, t_max):.1f},{_y(len(times) / total):.1f}")
    return " ".join(points)


def charts(by_area: dict[str, list[float | None]], floor_s: float | None) -> tuple[str, str]:
    """(time to confirmation, completion per area) as SVG; `by_area`: each cluster's
    seconds to confirmation (None: never) by district."""
    everyone = [t for times in by_area.values() for t in times]
    confirmed = [t for t in everyone if t is not None]
    t_max = max([*confirmed, floor_s or 0.0, 0.1]) * 1.05
    overall = [*_axes(t_max, "s since the request")]
    overall.append(
        f'<polyline points="{_curve(confirmed, len(everyone), t_max)}" class="line" '
        f'stroke="{COLOURS[0]}"/>'
    )
    if floor_s:
        x = _x(floor_s, t_max)
        overall.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" class="floor"/>'
            f'<text x="{x + 4:.1f}" y="{TOP + 12}">bare MQTT floor {floor_s:.2f} s</text>'
        )
    areas = [*_axes(t_max, "s since the request")]
    legend = []
    for k, (area, times) in enumerate(sorted(by_area.items())):
        colour = COLOURS[k % len(COLOURS)]
        done = [t for t in times if t is not None]
        areas.append(
            f'<polyline points="{_curve(done, len(times), t_max)}" class="line" stroke="{colour}"/>'
        )
        legend.append(
            f'<span style="color:{colour}">■ {html.escape(area)} ({len(done)}/{len(times)})</span>'
        )
    view = f'viewBox="0 0 {WIDTH} {HEIGHT}"'
    return (
        f'<svg {view} role="img" aria-label="time to confirmation">{"".join(overall)}</svg>',
        f'<svg {view} role="img" aria-label="completion by district">{"".join(areas)}</svg>'
        f'<p class="legend">{" ".join(legend)}</p>',
    )


DEFAULT_TITLE = "Province-wide emergency"


def page(
    result: dict[str, Any], by_area: dict[str, list[float | None]], title: str = DEFAULT_TITLE
) -> str:
    """The page; its table holds the headline figures, then a profile's own (any other
    number or name in `result`)."""
    first, second = charts(by_area, result.get("floor_all_acked_s"))
    headline = (
        "clusters",
        "delivered",
        "lost",
        "http_accepted_s",
        "p50_delivered_s",
        "p99_delivered_s",
        "trigger_to_all_delivered_s",
        "floor_all_acked_s",
        "control_plane_over_floor",
        "api_peak_rss_mb",
        "cpu_api_ms_per_1000_acks",
        "simulator_rss_kb_per_cluster",
        "database",
        "date",
    )
    keys = [k for k in headline if k in result]
    if title != DEFAULT_TITLE:
        keys += [
            k
            for k, v in result.items()
            if k not in keys and k != "machine" and isinstance(v, int | float | str)
        ]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(result[k]))}</td></tr>" for k in keys
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}: {result.get("clusters")} clusters</title>
<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; margin: 16px; width: 680px; color: #1b1b1b; }}
h1 {{ font-size: 18px; }} h2 {{ font-size: 14px; margin: 14px 0 4px; }}
svg {{ width: 100%; height: auto; }} svg text {{ font-size: 10px; fill: #333; }}
.axis {{ stroke: #333; }} .grid {{ stroke: #ddd; }} .floor {{ stroke: #b3261e; stroke-dasharray: 4 3; }}
.line {{ fill: none; stroke-width: 1.6; }}
table {{ border-collapse: collapse; font-size: 12px; }} th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; }}
.legend {{ font-size: 11px; }} .legend span {{ margin-right: 10px; white-space: nowrap; }}
</style></head><body>
<h1>{html.escape(title)}: {result.get("clusters")} clusters</h1>
<h2>Share of clusters confirmed, by time since the request</h2>{first}
<h2>Completion by district</h2>{second}
<h2>Figures</h2><table>{rows}</table>
</body></html>"""


def write(
    result: dict[str, Any],
    by_area: dict[str, list[float | None]],
    json_path: Path,
    title: str = DEFAULT_TITLE,
) -> None:
    """`name.html` and `name.png` beside `name.json`; the PNG only where Chromium is."""
    document = page(result, by_area, title)
    json_path.with_suffix(".html").write_text(document, encoding="utf-8")
    try:
        chromium = printing.find_chromium(None)
    except printing.PrintingUnavailable:
        return
    height = 800 + 24 * document.count("<tr>")  # the charts, then one line a figure
    png = asyncio.run(printing.html_to_png(document, chromium, width=712, height=height))
    json_path.with_suffix(".png").write_bytes(png)


def group(rows: list[tuple[str, float | None]]) -> dict[str, list[float | None]]:
    by_area: dict[str, list[float | None]] = defaultdict(list)
    for area, seconds in rows:
        by_area[area].append(seconds)
    return dict(by_area)
