"""The monthly report as files: CSV (the table by area, the area itself first) and XLSX
(a summary and every table on its own sheet, headed in the reader's language).

Numbers stay numbers (seconds, shares from 0 to 1) so a spreadsheet can sum them; the
headings say the unit."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from reports.airtime import Units
from reports.monthly import AreaStatistics, MonthlyReport

Translate = Callable[[str], str]

# (heading, value) of each by-area column; the headings are message ids (console/locale).
AREA_COLUMNS: list[tuple[str, Callable[[AreaStatistics], Any]]] = [
    ("Area code", lambda a: a.area_code),
    ("Area", lambda a: a.name),
    ("Broadcasts", lambda a: a.broadcasts),
    ("Emergencies", lambda a: a.by_class.get("emergency", 0)),
    ("Priority", lambda a: a.by_class.get("priority", 0)),
    ("Normal", lambda a: a.by_class.get("normal", 0)),
    ("Drills", lambda a: a.drills),
    ("Plays", lambda a: a.plays),
    ("Airtime (seconds)", lambda a: a.airtime_s),
    ("Clusters", lambda a: a.clusters),
    ("Share working (0-1)", lambda a: a.working_share),
    ("Median time to 50% confirmed (s)", lambda a: a.emergency_median_to_50_s),
    ("Median time to 90% confirmed (s)", lambda a: a.emergency_median_to_90_s),
    ("Median time to 100% confirmed (s)", lambda a: a.emergency_median_to_100_s),
    ("Bulletins", lambda a: sum(a.bulletins_by_topic.values())),
    ("Alarms raised", lambda a: a.alarms_raised),
    ("Alarms acknowledged", lambda a: a.alarms_acknowledged),
    ("Alarms cleared", lambda a: a.alarms_cleared),
]
CSV_KEYS = [
    "area_code",
    "name",
    "broadcasts",
    "emergencies",
    "priority",
    "normal",
    "drills",
    "plays",
    "airtime_s",
    "clusters",
    "working_share",
    "emergency_median_to_50_s",
    "emergency_median_to_90_s",
    "emergency_median_to_100_s",
    "bulletins",
    "alarms_raised",
    "alarms_acknowledged",
    "alarms_cleared",
]


def area_table(report: MonthlyReport) -> list[list[Any]]:
    return [[value(a) for _, value in AREA_COLUMNS] for a in [report.totals, *report.areas]]


def to_csv(report: MonthlyReport) -> str:
    """Machine headings (stable for scripts); the area itself first, then its children."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_KEYS)
    for row in area_table(report):
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


UNITS_SHOWN = {
    Units.THEN: "as they were at the time",
    Units.TODAY: "rolled up into today's units",
}


def to_xlsx(report: MonthlyReport, _: Translate) -> bytes:
    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = _("Summary")
    totals = report.totals
    _sheet_rows(
        summary,
        [_("Figure"), _("Value")],
        [
            [_("Area"), f"{report.area_name} ({report.area_code})"],
            [_("Month"), report.month],
            [_("Units"), _(UNITS_SHOWN[report.units])],
            [_("From (UTC)"), report.since.replace(tzinfo=None)],
            [_("To (UTC)"), report.until.replace(tzinfo=None)],
            *[[_(heading), value(totals)] for heading, value in AREA_COLUMNS[2:]],
        ],
    )
    _sheet_rows(
        book.create_sheet(_("By area")),
        [_(heading) for heading, _value in AREA_COLUMNS],
        area_table(report),
    )
    _sheet_rows(
        book.create_sheet(_("Emergencies")),
        [
            _("Sent (UTC)"),
            _("Title"),
            _("Drill"),
            _("Clusters"),
            _("Confirmed"),
            _("Time to 50% (s)"),
            _("Time to 90% (s)"),
            _("Time to 100% (s)"),
        ],
        [
            [
                e.created_at.replace(tzinfo=None),
                e.title,
                _("yes") if e.drill else _("no"),
                e.clusters,
                e.confirmed,
                e.to_50_s,
                e.to_90_s,
                e.to_100_s,
            ]
            for e in report.emergencies
        ],
    )
    _sheet_rows(
        book.create_sheet(_("By day")),
        [_("Day"), _("Broadcasts"), _("Plays"), _("Airtime (seconds)")],
        [[d.day, d.broadcasts, d.plays, d.airtime_s] for d in report.days],
    )
    _sheet_rows(
        book.create_sheet(_("Bulletins by topic")),
        [_("Topic"), _("Bulletins")],
        [[topic, n] for topic, n in sorted(totals.bulletins_by_topic.items())],
    )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A workbook refuses control characters in text (one odd bulletin or area name made
    the month's report answer 500 on every call, issue 20): they are dropped."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def _sheet_rows(sheet: Any, headings: list[str], rows: list[list[Any]]) -> None:
    sheet.append(headings)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_cell(value) for value in row])
    for index, heading in enumerate(headings, start=1):
        widest = max([len(str(heading)), *(len(str(r[index - 1])) for r in rows)])
        sheet.column_dimensions[get_column_letter(index)].width = min(60, widest + 2)
    sheet.freeze_panes = "A2"
