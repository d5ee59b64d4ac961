"""The monthly report for the provincial leadership: rendered (JSON, CSV, XLSX, and a PDF
printed by Chromium) and every figure checked against the raw records of a month in
which a real simulated commune heard broadcasts and raised an alarm."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pypdf
from openpyxl import load_workbook
from sqlalchemy import func, select

from areas.models import Area
from broadcast.models import Broadcast, Delivery
from bulletins.models import Bulletin
from core.database import session_scope
from health.models import Alarm
from media.models import MediaFile
from reports.monthly import month_bounds
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, send, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually

COMMUNE, DISTRICT = "25216", "689"
TECHNICIAN = {"x-actor": "ky.thuat.vien", "x-role": "technician"}


def test_a_month_is_the_local_calendar_month() -> None:
    since, until = month_bounds("2026-12", "Asia/Ho_Chi_Minh")
    assert since == datetime(2026, 11, 30, 17, tzinfo=UTC)
    assert until == datetime(2026, 12, 31, 17, tzinfo=UTC)


async def _raw_figures(stack: Stack, path: str, since: datetime, until: datetime) -> dict[str, Any]:
    """What the records say, counted here without the report's code."""
    async with session_scope(stack.runtime.sessions) as session:
        under = Area.path.startswith(path)
        in_month = (Broadcast.created_at >= since, Broadcast.created_at < until)
        played = (
            await session.execute(
                select(Delivery.broadcast_id, MediaFile.duration_ms, Broadcast.repeat)
                .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
                .join(Area, Area.id == Delivery.area_id)
                .join(MediaFile, MediaFile.sha256 == Broadcast.media_sha256)
                .where(under, Delivery.state == "played", *in_month)
            )
        ).all()
        sent = (
            await session.scalars(
                select(func.count(func.distinct(Delivery.broadcast_id)))
                .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
                .join(Area, Area.id == Delivery.area_id)
                .where(under, *in_month)
            )
        ).one()
        alarms = (
            await session.scalars(
                select(Alarm).where(Alarm.raised_at >= since, Alarm.raised_at < until)
            )
        ).all()
        bulletins = (
            await session.scalars(
                select(Bulletin.topic).where(
                    Bulletin.created_at >= since, Bulletin.created_at < until
                )
            )
        ).all()
    return {
        "broadcasts": sent,
        "plays": len(played),
        "airtime_s": round(sum(ms * repeat / 1000 for _, ms, repeat in played)),
        "alarms_raised": len(alarms),
        "alarms_acknowledged": sum(1 for a in alarms if a.acknowledged_at is not None),
        "bulletins_by_topic": dict(Counter(bulletins)),
    }


async def _confirm_times(stack: Stack, broadcast_id: str) -> list[float]:
    async with session_scope(stack.runtime.sessions) as session:
        sent_at = (await session.get(Broadcast, broadcast_id)).created_at  # type: ignore[union-attr]
        confirmed = (
            await session.scalars(
                select(Delivery.delivered_at).where(
                    Delivery.broadcast_id == broadcast_id, Delivery.delivered_at.is_not(None)
                )
            )
        ).all()
    return sorted((c - sent_at).total_seconds() for c in confirmed if c is not None)


async def test_the_monthly_report_says_what_the_records_say(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
) -> None:
    stack = await stack_factory(alarm_evaluate_s=0)
    specs = (await small_province(stack, eboards=True)).of(COMMUNE)  # e-board too
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    media = await upload(stack, tone_mp3)
    for topic in ("weather", "weather", "disaster"):
        await approved_bulletin(
            stack, title=f"Tin {topic}", topic=topic, media_sha256=media["sha256"]
        )
    flood = await send(
        stack, title="Lũ quét Đồng Xoài", areas=[COMMUNE], media_sha256=media["sha256"]
    )
    await stack.wait_broadcast(flood["id"], lambda b: counts(b, "played") == len(specs))
    drill = await send(
        stack,
        title="Diễn tập cháy rừng",
        areas=[COMMUNE],
        media_sha256=media["sha256"],
        drill=True,
        repeat=2,
    )
    await stack.wait_broadcast(drill["id"], lambda b: counts(b, "played") == len(specs))
    hot = next(fleet.devices[s.code] for s in specs if s.kind == "speaker_cluster")
    hot.condition.amp_temp_c = 82.0
    assert hot.heartbeat_now()
    [alarm] = await eventually(
        lambda: _alarms(stack), lambda a: len(a) == 1, what="the overheating alarm"
    )
    acked = await stack.client.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", headers=TECHNICIAN)
    assert acked.status_code == 200, acked.text

    zone = stack.settings.default_timezone
    month = datetime.fromisoformat(flood["created_at"]).astimezone(ZoneInfo(zone)).strftime("%Y-%m")
    since, until = month_bounds(month, zone)
    asked = {"area": DISTRICT, "month": month}
    response = await stack.client.get("/api/v1/reports/monthly", params=asked)
    assert response.status_code == 200, response.text
    report = response.json()
    totals = report["totals"]
    async with session_scope(stack.runtime.sessions) as session:
        path = (await session.scalars(select(Area.path).where(Area.code == DISTRICT))).one()
    raw = await _raw_figures(stack, path, since, until)
    assert totals["broadcasts"] == raw["broadcasts"] == 2
    assert totals["plays"] == raw["plays"] == 2 * len(specs)
    assert totals["airtime_s"] == raw["airtime_s"] > 0
    assert totals["by_class"] == {"emergency": 2} and totals["drills"] == 1
    assert totals["alarms_raised"] == raw["alarms_raised"] == 1
    assert totals["alarms_acknowledged"] == raw["alarms_acknowledged"] == 1
    # The bulletins are the province's (written by the administrator), not the district's.
    assert totals["bulletins_by_topic"] == {}
    commune = next(a for a in report["areas"] if a["area_code"] == COMMUNE)
    assert commune["plays"] == totals["plays"] and commune["airtime_s"] == totals["airtime_s"]
    assert sum(a["plays"] for a in report["areas"]) == totals["plays"]
    assert [e["id"] for e in report["emergencies"]] == [flood["id"], drill["id"]]
    for line in report["emergencies"]:
        times = await _confirm_times(stack, line["id"])
        assert line["confirmed"] == len(times) == len(specs)
        assert line["clusters"] == len(specs)
        assert line["to_100_s"] == round(times[-1], 3)
        assert line["to_50_s"] == round(times[math.ceil(len(specs) / 2) - 1], 3)
    day = datetime.fromisoformat(flood["created_at"]).astimezone(ZoneInfo(zone)).date()
    days = {d["day"]: d for d in report["days"]}
    assert len(days) in (28, 29, 30, 31) and days[day.isoformat()]["plays"] == totals["plays"]
    assert sum(d["broadcasts"] for d in report["days"]) == 2

    province = (await stack.client.get("/api/v1/reports/monthly", params={"month": month})).json()
    everywhere = await _raw_figures(stack, "/", since, until)
    topics = province["totals"]["bulletins_by_topic"]
    assert topics == everywhere["bulletins_by_topic"]
    assert (topics["weather"], topics["disaster"]) == (2, 1)

    exported = await stack.client.get("/api/v1/reports/monthly.csv", params=asked)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["area_code"] for r in rows] == [DISTRICT, *(a["area_code"] for a in report["areas"])]
    assert int(rows[0]["plays"]) == totals["plays"] and int(rows[0]["emergencies"]) == 2
    assert int(rows[0]["alarms_raised"]) == 1

    workbook = await stack.client.get(
        "/api/v1/reports/monthly.xlsx", params={**asked, "lang": "en"}
    )
    assert workbook.status_code == 200
    book = load_workbook(io.BytesIO(workbook.content))
    assert book.sheetnames == ["Summary", "By area", "Emergencies", "By day", "Bulletins by topic"]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert (
        summary["Plays"] == totals["plays"] and summary["Airtime (seconds)"] == totals["airtime_s"]
    )
    assert summary["Drills"] == 1 and summary["Alarms acknowledged"] == 1
    sheet = list(book["Emergencies"].iter_rows(min_row=2, values_only=True))
    assert [(r[1], r[2], r[7]) for r in sheet] == [
        (e["title"], "yes" if e["drill"] else "no", e["to_100_s"]) for e in report["emergencies"]
    ]
    vietnamese = load_workbook(
        io.BytesIO((await stack.client.get("/api/v1/reports/monthly.xlsx", params=asked)).content)
    )
    assert vietnamese.sheetnames[0] == "Tổng hợp"

    printed = await stack.client.get("/api/v1/reports/monthly.pdf", params=asked, timeout=120)
    assert printed.status_code == 200, printed.text
    assert printed.headers["content-type"] == "application/pdf"
    pdf = pypdf.PdfReader(io.BytesIO(printed.content))
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert "Báo cáo tháng" in text and month in text
    assert "Lũ quét Đồng Xoài" in text and "Diễn tập cháy rừng" in text
    assert f"{totals['plays']}" in text and report["area_name"] in text
    # The charts are drawn: filled bars in the charts' colour (#1f5fa8) on the first page.
    drawing = pdf.pages[0].get_contents()
    assert drawing is not None and b".1216 .3725 .6588 rg" in drawing.get_data()

    wrong = await stack.client.get("/api/v1/reports/monthly", params={"month": "2026-13"})
    assert wrong.status_code == 422 and wrong.json()["detail"]["field"] == "month"


async def _alarms(stack: Stack) -> list[dict[str, Any]]:
    response = await stack.client.get("/api/v1/alarms", params={"area": COMMUNE})
    data: list[dict[str, Any]] = response.json()
    return data
