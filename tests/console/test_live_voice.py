"""Live voice from the console in Debian's Chromium, its microphone a file of a known
tone: a commune operator goes live to the commune, every cluster plays the voice, and
played after "Kết thúc"; what was recorded is what was said."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, WebSocketRoute, expect

from devstack.synth import tone
from simulator.fleet import Fleet
from tests.console.conftest import CHROMIUM, FAKE_MICROPHONE, _Chromium
from tests.console.helpers import sign_in
from tests.factories import small_province
from tests.live.helpers import COMMUNE, dominant_hz, ended, heard
from tests.security.helpers import make_user
from tests.support import Stack, counts

TONE_HZ = 880


@pytest.fixture
async def singing_browser(chromium: _Chromium, audio_dir: Path) -> AsyncIterator[Browser]:
    """A Chromium whose microphone plays a 880 Hz tone (looped)."""
    wav = tone(audio_dir / "mic-880.wav", 3, source=f"sine=frequency={TONE_HZ}", sample_rate=48000)
    assert CHROMIUM is not None
    browser = await chromium.playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[*FAKE_MICROPHONE, f"--use-file-for-fake-audio-capture={wav}"],
    )
    try:
        yield browser
    finally:
        await browser.close()


async def test_an_operator_goes_live_to_the_commune_from_the_console(
    stack: Stack, singing_browser: Browser, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await small_province(stack, clusters_per_commune=2)).speakers(COMMUNE)
    fleet = fleet_factory(specs)
    fleet.env.keep_live_audio = True
    await fleet.start()
    await make_user(stack, "van.hanh", role="commune_operator", area=COMMUNE)
    base = stack.settings.public_base_url
    page = await singing_browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    await sign_in(page, base, "van.hanh")
    await page.get_by_role("link", name="Phát trực tiếp").click()
    await expect(page.locator("h1")).to_have_text("Phát trực tiếp")
    assert await page.locator("#class option[value=emergency]").count() == 0
    await page.locator(f"input[name=areas][value='{COMMUNE}']").check()
    await page.get_by_label("Loại", exact=True).select_option("normal")
    spoke_from = time.monotonic()  # the microphone is on from here to "Kết thúc"
    await page.get_by_role("button", name="Phát trực tiếp").click()
    await expect(page.locator("#voice-status")).to_have_text("Đang phát trực tiếp")
    # Every cluster plays (silence first, then the voice), counted live per area.
    await expect(page.locator(f"[data-playing='{COMMUNE}']")).to_have_text(str(len(specs)))
    await expect(page.locator(f"[data-not-playing='{COMMUNE}']")).to_have_text("0")
    broadcast_id = await page.locator("#voice").get_attribute("data-broadcast")
    assert broadcast_id
    await page.wait_for_timeout(2500)  # the officer speaks for two and a half seconds
    await page.get_by_role("button", name="Kết thúc").click()
    spoke_s = time.monotonic() - spoke_from
    await expect(page.locator("#voice-status")).to_have_text("Đã kết thúc")
    assert await page.locator("#level").evaluate("m => m.value") >= 0
    wide = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert wide is False, "the page scrolls sideways on a phone"

    await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "played") == len(specs))
    record = await ended(stack, broadcast_id)
    assert record["end_reason"] == "ended by van.hanh"
    # The record holds what the browser sent, to within half a second.
    assert abs(record["recorded_ms"] - record["spoken_ms"]) <= 500, record
    assert record["recorded_ms"] <= spoke_s * 1000, record
    assert record["recording_sha256"], record
    for device in fleet.devices.values():
        audio = heard(device, broadcast_id)
        assert len(audio) == device.stream_bytes[broadcast_id], "no gap in the bytes"
        assert abs(dominant_hz(audio) - TONE_HZ) < 20, device.spec.code


async def test_a_dropped_browser_link_reconnects_and_the_voice_goes_on(
    stack: Stack, singing_browser: Browser, fleet_factory: Callable[..., Fleet]
) -> None:
    """The phone's WebSocket is cut mid-session (Playwright closes it on the page's side):
    the page says the link is lost, connects again with a new recorder within the grace,
    and the clusters keep playing the one stream until "Kết thúc"."""
    specs = (await small_province(stack)).speakers(COMMUNE)
    fleet = fleet_factory(specs)
    await fleet.start()
    await make_user(stack, "van.hanh", role="commune_operator", area=COMMUNE)
    page = await singing_browser.new_page(viewport={"width": 390, "height": 844})
    links: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        route.connect_to_server()
        links.append(route)

    await page.route_web_socket("**/api/v1/live/**", through)
    await sign_in(page, stack.settings.public_base_url, "van.hanh")
    await page.get_by_role("link", name="Phát trực tiếp").click()
    await page.locator(f"input[name=areas][value='{COMMUNE}']").check()
    await page.get_by_label("Loại", exact=True).select_option("normal")
    await page.get_by_role("button", name="Phát trực tiếp").click()
    status = page.locator("#voice-status")
    await expect(status).to_have_text("Đang phát trực tiếp")
    await expect(page.locator(f"[data-playing='{COMMUNE}']")).to_have_text(str(len(specs)))
    broadcast_id = await page.locator("#voice").get_attribute("data-broadcast")
    assert broadcast_id and len(links) == 1

    await links[0].close(code=4000, reason="the phone lost its signal")
    await expect(status).to_have_text(await status.get_attribute("data-lost") or "")
    await expect(status).to_have_text("Đang phát trực tiếp")  # connected again
    assert len(links) == 2
    live = await stack.client.get(f"/api/v1/live/{broadcast_id}")
    assert live.json()["status"] == "live" and live.json()["officer_connected"], live.text

    await page.get_by_role("button", name="Kết thúc").click()
    await expect(status).to_have_text("Đã kết thúc")
    done = await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "played") == len(specs))
    assert counts(done, "failed") == 0, "the clusters' stream never broke"
    record = await ended(stack, broadcast_id)
    assert record["end_reason"] == "ended by van.hanh"
    assert all(d.stream_bytes[broadcast_id] > 0 for d in fleet.devices.values())
