"""The load test's report: the curves end where the records say, and the page is
photographed to PNG by real Chromium."""

from __future__ import annotations

import re
from pathlib import Path

from bench import report


def test_each_curve_ends_at_the_share_confirmed_and_the_png_is_written(tmp_path: Path) -> None:
    by_area = report.group(
        [("Đồng Xoài", 0.2), ("Đồng Xoài", 0.4), ("Bình Long", 0.3), ("Bình Long", None)]
    )
    overall, areas = report.charts(by_area, floor_s=0.1)
    last_y = [
        float(points.split()[-1].split(",")[1]) for points in re.findall(r'points="([^"]+)"', areas)
    ]
    full, half = report._y(1.0), report._y(0.5)
    assert sorted(last_y) == sorted([full, half])  # Bình Long 1 of 2, Đồng Xoài 2 of 2
    [line] = re.findall(r'points="([^"]+)"', overall)
    assert float(line.split()[-1].split(",")[1]) == report._y(3 / 4)
    assert "bare MQTT floor 0.10 s" in overall and "(1/2)" in areas

    json_path = tmp_path / "loadtest.json"
    report.write({"clusters": 4, "floor_all_acked_s": 0.1}, by_area, json_path)
    assert "Completion by district" in json_path.with_suffix(".html").read_text()
    png = json_path.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_a_profiles_page_carries_its_title_and_its_own_figures() -> None:
    by_area = report.group([("Đồng Xoài", 0.2)])
    result = {"clusters": 1, "profile": "alert-storm", "wave2_lost": 0, "machine": {"cpus": 2}}
    page = report.page(result, by_area, title="Alert storm")
    assert "<h1>Alert storm: 1 clusters</h1>" in page
    assert "<th>wave2_lost</th><td>0</td>" in page and "<th>profile</th>" in page
    assert "cpus" not in page  # nested facts stay in the JSON
    # The default page keeps to its headline figures.
    assert "wave2_lost" not in report.page(result, by_area)
