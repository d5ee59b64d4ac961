from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Playwright, async_playwright

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's stand-in microphone (a steady beep), granted without asking.
FAKE_MICROPHONE = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


class _Chromium:
    """One Chromium for a worker's console tests: a launch takes a second or more, and
    each test's pages are in contexts of their own anyway (`new_page` makes one, with
    its own cookies and storage). One that died is launched again for the next test."""

    def __init__(self, playwright: Playwright) -> None:
        self.playwright = playwright
        self.launched: Browser | None = None

    async def browser(self) -> Browser:
        if self.launched is None or not self.launched.is_connected():
            assert CHROMIUM is not None
            self.launched = await self.playwright.chromium.launch(
                executable_path=CHROMIUM, args=FAKE_MICROPHONE
            )
        return self.launched

    async def close(self) -> None:
        if self.launched is not None and self.launched.is_connected():
            await self.launched.close()


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[_Chromium]:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed (scripts/setup installs Debian's chromium)")
    async with async_playwright() as playwright:
        held = _Chromium(playwright)
        try:
            yield held
        finally:
            await held.close()


@pytest.fixture
async def browser(chromium: _Chromium) -> AsyncIterator[Browser]:
    launched = await chromium.browser()
    try:
        yield launched
    finally:
        if launched.is_connected():  # (one that died is replaced, not tidied)
            for context in launched.contexts:  # the test's pages, and who they signed in
                await context.close()
