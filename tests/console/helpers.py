from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import Page, expect

from tests.broadcast.helpers import approved_bulletin, upload
from tests.factories import small_province
from tests.security.helpers import PASSWORD
from tests.support import Stack

COMMUNE = "25216"  # of district 689 in the small province (tests/factories.py)
DISTRICT = "689"


async def sign_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/console")
    await expect(page).to_have_url(f"{base}/console/login?next=/console")
    # The keyboard alone: the name field has the focus, Tab to the password, Enter.
    await page.keyboard.type(username)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{base}/console")


async def morning_news_from_tomorrow(stack: Stack, tone_mp3: Path) -> tuple[dict[str, Any], date]:
    """A small province and the commune's daily 06:30 news from tomorrow (local)."""
    await small_province(stack)
    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, title="Tin sáng", media_sha256=media["sha256"])
    local = ZoneInfo(stack.settings.default_timezone)
    tomorrow = stack.runtime.clock.now().astimezone(local).date() + timedelta(days=1)
    created = await stack.client.post(
        "/api/v1/schedules",
        json={
            "title": "Bản tin buổi sáng",
            "bulletin_id": bulletin["id"],
            "starts_local": f"{tomorrow.isoformat()}T06:30:00",
            "rule": "FREQ=DAILY",
            "areas": [COMMUNE],
            "level": "commune",  # the commune's own news, which its operator may change
        },
    )
    assert created.status_code == 201, created.text
    return bulletin, tomorrow
