"""`broadcast screenshots`: the console's main pages photographed on a whole simulated
province (the README shows them). The stack runs as separate processes with 2% of the
clusters never connecting, so the map has something to show; the pages are filled the
way people fill them (a bulletin written, reviewed and scheduled, one sent down to the
communes, an emergency sent from the emergency page), then each page is saved as PNG on
a desktop screen and two on a phone screen."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from rich.console import Console

from devstack.province import province_stack
from devstack.seed import DEMO_PASSWORD, ensure_demo_users

COMMUNE, DISTRICT = "25216", "688"  # Phường Thác Mơ, Thị xã Phước Long
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# The live view has settled: every cluster has played but those that never connected
# (offline all along, they stay in the list of the silent until the alert expires).
FINISHED = """() => {
  const n = (el) => Number((el && el.textContent || "").replace(/\\D/g, "")) || 0;
  const total = n(document.getElementById("total"));
  const played = n(document.querySelector("[data-state=played]"));
  const silent = n(document.getElementById("silent-total"));
  return total > 0 && played > 0 && played + silent === total;
}"""


def _client(api_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=api_url, timeout=120)
    signed = client.post(
        "/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD}
    )
    signed.raise_for_status()  # the session cookie stays on the client
    return client


def _ok(response: httpx.Response) -> Any:
    response.raise_for_status()
    return response.json()


def _prepare(api_url: str) -> dict[str, str]:
    """What people would have done by the time the pages are looked at."""
    officer, editor, commune = (
        _client(api_url, name) for name in ("truc.ban", "bien.tap", "xa.thacmo")
    )
    news = _ok(
        officer.post(
            "/api/v1/bulletins",
            json={
                "title": "Bản tin thời sự buổi sáng",
                "topic": "general",
                "text": "Đài truyền thanh xin kính chào quý thính giả. Sau đây là bản tin sáng.",
            },
        )
    )
    _ok(officer.post(f"/api/v1/bulletins/{news['id']}/submit"))
    _ok(editor.post(f"/api/v1/bulletins/{news['id']}/approve"))
    waiting = _ok(
        commune.post(
            "/api/v1/bulletins",
            json={
                "title": "Lịch tiêm phòng cho trẻ em tháng 12",
                "topic": "health",
                "text": "Sáng thứ bảy, trạm y tế phường tiêm phòng sởi cho trẻ dưới năm tuổi.",
            },
        )
    )
    _ok(commune.post(f"/api/v1/bulletins/{waiting['id']}/submit"))
    start = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    for title, hour, rule in (
        ("Bản tin buổi sáng", "06:30", "FREQ=DAILY"),
        ("Bản tin buổi chiều", "17:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
    ):
        _ok(
            commune.post(
                "/api/v1/schedules",
                json={
                    "title": title,
                    "bulletin_id": news["id"],
                    "starts_local": f"{start}T{hour}:00",
                    "rule": rule,
                    "areas": [COMMUNE],
                    "accept_conflicts": True,
                },
            )
        )
    _ok(
        officer.post(
            f"/api/v1/bulletins/{news['id']}/distribute",
            json={"areas": [DISTRICT], "class": "normal"},
        )
    )
    offline = _ok(
        officer.get("/api/v1/clusters", params={"area": DISTRICT, "online": "false", "limit": 1})
    )["items"]
    any_cluster = _ok(officer.get("/api/v1/clusters", params={"area": COMMUNE, "limit": 1}))
    cluster = (offline or any_cluster["items"])[0]["code"]
    for client in (officer, editor, commune):
        client.close()
    return {"cluster": cluster}


def _shoot(api_url: str, out: Path, facts: dict[str, str], console: Console) -> list[Path]:
    from playwright.sync_api import Page, expect, sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    saved: list[Path] = []

    def sign_in(page: Page, username: str) -> None:
        page.goto(f"{api_url}/console/login")
        page.fill("#username", username)
        page.fill("#password", DEMO_PASSWORD)
        page.press("#password", "Enter")
        page.wait_for_url(f"{api_url}/console")

    def save(page: Page, name: str, full_page: bool = False) -> None:
        path = out / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        saved.append(path)
        console.print(f"saved {path}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        officer = browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
        sign_in(officer, "truc.ban")
        save(officer, "home")
        officer.goto(f"{api_url}/console/emergency")
        officer.locator(f"input[name=areas][value='{DISTRICT}']").check()
        officer.fill("#title", "Cảnh báo lũ trên sông Bé")
        officer.fill(
            "#text",
            "Mực nước sông Bé đang lên nhanh. Bà con vùng trũng di chuyển đến nơi an toàn.",
        )
        officer.click("#review")
        expect(officer.locator("#summary")).to_be_visible()
        save(officer, "emergency", full_page=True)
        officer.click("#summary button[type=submit]")
        officer.wait_for_url(f"{api_url}/console/broadcasts/**")
        officer.wait_for_function(FINISHED, timeout=60_000)
        live_url = officer.url
        save(officer, "live")
        officer.goto(f"{api_url}/console/health")
        save(officer, "health")
        officer.goto(f"{api_url}/console/reports")
        save(officer, "reports")

        technician = browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
        sign_in(technician, "ky.thuat")
        technician.goto(f"{api_url}/console/clusters/{facts['cluster']}")
        save(technician, "phone-cluster")
        technician.goto(f"{api_url}/console/health")
        save(technician, "phone-health")

        commune = browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
        sign_in(commune, "xa.thacmo")
        commune.goto(f"{api_url}/console/schedule")
        save(commune, "schedule")
        commune.goto(f"{api_url}/console/inbox")
        save(commune, "inbox")

        editor = browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
        sign_in(editor, "bien.tap")
        editor.goto(f"{api_url}/console/bulletins")
        save(editor, "bulletins")
        phone_officer = browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
        sign_in(phone_officer, "truc.ban")
        phone_officer.goto(live_url)
        phone_officer.wait_for_function(FINISHED, timeout=60_000)
        save(phone_officer, "phone-live")
        browser.close()
    return saved


def take_screenshots(*, out: Path, clusters: int, processes: int) -> list[Path]:
    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    with province_stack(
        clusters=clusters,
        processes=processes,
        database_url=None,
        console=console,
        heartbeat_s=30.0,
        offline=0.02,
    ) as province:
        asyncio.run(ensure_demo_users(province.database_url))
        facts = _prepare(province.stack.api_url)
        return _shoot(province.stack.api_url, out, facts, console)
