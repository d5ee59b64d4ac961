"""A link to the sign-in page cannot run script or send the officer elsewhere (issue 19,
critical): `/console/login?next=javascript:fetch('/api/v1/broadcasts',…)` ran on the real
console once the duty officer signed in, and aired the attacker's emergency. In Chromium,
against the running console."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.async_api import Browser, expect

from tests.factories import small_province
from tests.security.helpers import PASSWORD, make_user
from tests.support import Stack

ATTACK = (
    "javascript:fetch('/api/v1/broadcasts',{method:'POST',headers:{'content-type':"
    "'application/json'},body:JSON.stringify({title:'Giả mạo',areas:['70'],text:'Sơ tán'})})"
)


@pytest.mark.parametrize(
    ("next_", "lands_on"),
    [
        (ATTACK, "/console"),
        ("http://elsewhere.example/console", "/console"),
        ("//elsewhere.example/console", "/console"),
        ("/console/../api/v1/auth/me", "/console"),
        ("/console/health?area=25216", "/console/health?area=25216"),
    ],
)
async def test_after_signing_in_only_a_console_page_of_this_site(
    stack: Stack, browser: Browser, next_: str, lands_on: str
) -> None:
    await small_province(stack)
    await make_user(stack, "truc.ban", role="province_officer")
    base = stack.settings.public_base_url
    page = await browser.new_page()
    response = await page.goto(f"{base}/console/login?next={quote(next_, safe='')}")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    await page.get_by_label("Tên đăng nhập").fill("truc.ban")
    await page.get_by_label("Mật khẩu").fill(PASSWORD)
    await page.get_by_role("button", name="Đăng nhập").click()
    await expect(page).to_have_url(f"{base}{lands_on}")
    await page.wait_for_load_state("networkidle")
    sent = await stack.client.get("/api/v1/broadcasts")
    assert sent.json()["total"] == 0  # nothing aired by the link
    await page.close()
