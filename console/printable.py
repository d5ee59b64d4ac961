"""The monthly report as one self-contained HTML page (styles and SVG charts inline, no
scripts, nothing fetched): shown in the console and printed to PDF as it is."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, FileSystemLoader, select_autoescape

from console import i18n
from reports.monthly import MonthlyReport

_pages = Environment(
    loader=FileSystemLoader(i18n.HERE / "templates"),
    autoescape=select_autoescape(["html"]),
)


@dataclass(frozen=True)
class Bar:
    label: str
    share: float  # of the longest bar, 0..1
    text: str  # the figure written beside it


def bars(pairs: list[tuple[str, float]], shown: list[str]) -> list[Bar]:
    most = max((v for _, v in pairs), default=0.0) or 1.0
    return [
        Bar(label, max(0.0, v) / most, text) for (label, v), text in zip(pairs, shown, strict=True)
    ]


def monthly_html(
    report: MonthlyReport, locale: str, downloads: list[tuple[str, str]] | None = None
) -> str:
    """`downloads`: (label, address) links shown on screen above the report, not printed."""
    _ = i18n.translations(locale).gettext
    fmt = i18n.Formats(locale, report.time_zone)

    def hours(seconds: int) -> str:
        return fmt.number(round(seconds / 3600, 1))

    areas = report.areas
    timed = [e for e in report.emergencies if e.to_100_s is not None]
    topics = sorted(report.totals.bulletins_by_topic.items(), key=lambda t: (-t[1], t[0]))
    charts = {
        "airtime": bars(
            [(a.name, a.airtime_s) for a in areas], [hours(a.airtime_s) for a in areas]
        ),
        "working": bars(
            [(a.name, a.working_share) for a in areas],
            [fmt.number(round(a.working_share * 100, 1)) + " %" for a in areas],
        ),
        "emergencies": bars(
            [(e.title, e.to_100_s or 0.0) for e in timed],
            [fmt.number(e.to_100_s or 0.0) + " s" for e in timed],
        ),
        "topics": bars([(_(t), n) for t, n in topics], [fmt.number(n) for _t, n in topics]),
        "days": bars(
            [(str(d.day.day), d.plays) for d in report.days],
            [fmt.number(d.plays) for d in report.days],
        ),
    }
    return _pages.get_template("monthly_report.html").render(
        _=_,
        fmt=fmt,
        locale=locale,
        report=report,
        charts=charts,
        hours=hours,
        downloads=downloads or [],
    )
