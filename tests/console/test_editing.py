"""Changing things from the console, in a real browser: a commune operator edits, skips
and ends a schedule item and gives two clusters of the commune their own slot; a writer
sends a bulletin to the editorial board; the report draws its figures as charts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from simulator.fleet import Fleet
from tests.broadcast.helpers import upload
from tests.console.helpers import COMMUNE, DISTRICT, morning_news_from_tomorrow, sign_in
from tests.factories import small_province
from tests.security.helpers import make_user
from tests.support import Stack


async def _operator_on_the_schedule(stack: Stack, browser: Browser) -> Page:
    await make_user(stack, "xa.vien", role="commune_operator", area=COMMUNE)
    page = await browser.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "End this schedule?": yes
    await sign_in(page, stack.settings.public_base_url, "xa.vien")
    await page.goto(f"{stack.settings.public_base_url}/console/schedule")
    return page


async def test_an_operator_moves_skips_and_ends_a_daily_slot(
    stack: Stack, browser: Browser, tone_mp3: Path
) -> None:
    _, tomorrow = await morning_news_from_tomorrow(stack, tone_mp3)
    page = await _operator_on_the_schedule(stack, browser)
    days = page.locator("section.day")
    await expect(days.nth(1)).to_contain_text("06:30")

    # Edit: the form comes back filled in; the news moves to 07:15 from tomorrow.
    await days.nth(1).get_by_role("button", name="Sửa").click()
    await expect(page.locator("#editing")).to_have_text("Đang sửa: Bản tin buổi sáng")
    await expect(page.get_by_label("Lặp lại")).to_have_value("FREQ=DAILY")
    await page.get_by_label("Lần phát đầu (giờ địa phương)").fill(f"{tomorrow.isoformat()}T07:15")
    await page.get_by_role("button", name="Lưu").click()
    for n in range(1, 7):
        await expect(days.nth(n)).to_contain_text("07:15")
        await expect(days.nth(n)).not_to_contain_text("06:30")

    # Skip one day's play: that day only is empty.
    await days.nth(3).get_by_role("button", name="Bỏ lần phát này").click()
    await expect(days.nth(3)).to_contain_text("Không có lịch phát")
    for n in (1, 2, 4, 5, 6):
        await expect(days.nth(n)).to_contain_text("07:15")

    # End it: nothing more of it plays.
    await days.nth(1).get_by_role("button", name="Kết thúc").click()
    for n in range(7):
        await expect(days.nth(n)).to_contain_text("Không có lịch phát")
    [saved] = (await stack.client.get("/api/v1/schedules")).json()["items"]
    assert saved["status"] == "ended"
    assert saved["starts_local"].startswith(f"{tomorrow.isoformat()}T07:15")
    assert len(saved["exdates_local"]) == 1


async def test_two_clusters_of_a_commune_get_their_own_item_in_a_shared_slot(
    stack: Stack, browser: Browser, tone_mp3: Path
) -> None:
    news, tomorrow = await morning_news_from_tomorrow(stack, tone_mp3)
    market = (await stack.client.get(f"/api/v1/clusters?area={COMMUNE}&limit=500")).json()
    codes = sorted(c["code"] for c in market["items"] if c["kind"] == "speaker_cluster")[:2]
    page = await _operator_on_the_schedule(stack, browser)
    await page.get_by_text("Thêm vào lịch phát").click()
    await page.get_by_label("Tiêu đề").fill("Thông báo chợ phiên")
    await page.get_by_label("Bản tin đã duyệt").select_option(news["id"])
    await page.get_by_label("Lần phát đầu (giờ địa phương)").fill(f"{tomorrow.isoformat()}T06:30")
    await page.get_by_label("Chỉ các cụm loa được đánh dấu dưới đây", exact=False).check()
    for code in codes:
        await page.locator(f"input[name=clusters][value='{code}']").check()
    # The same slot as the commune's news on those two clusters: shown, then saved anyway.
    await page.get_by_role("button", name="Lưu").click()
    await expect(page.locator("#s-overlaps li")).to_contain_text("Trùng với «Bản tin buổi sáng»")
    await page.get_by_role("button", name="Vẫn lưu", exact=False).click()
    row = page.locator("section.day").nth(1).locator("tr", has_text="Thông báo chợ phiên")
    await expect(row.locator("td").nth(3)).to_have_text("2")
    saved = {s["title"]: s for s in (await stack.client.get("/api/v1/schedules")).json()["items"]}
    assert saved["Thông báo chợ phiên"]["target_clusters"] == codes
    assert saved["Thông báo chợ phiên"]["target_areas"] == []


async def test_a_writer_sends_a_spoken_bulletin_for_review_and_the_board_approves_it(
    stack: Stack, browser: Browser, tone_mp3: Path
) -> None:
    await small_province(stack)
    await make_user(stack, "xa.vien", role="commune_operator", area=COMMUNE)
    await make_user(stack, "bien.tap", role="editor")
    base = stack.settings.public_base_url
    writer = await browser.new_page()
    await sign_in(writer, base, "xa.vien")
    await writer.goto(f"{base}/console/bulletins")
    await writer.get_by_text("Soạn bản tin").click()
    await writer.get_by_label("Tiêu đề").fill("Lịch thu gom rác tháng 12")
    await writer.get_by_label("Chủ đề").fill("health")
    await writer.get_by_label("Nội dung, đọc bằng giọng đọc tự động", exact=False).fill(
        "Từ ngày 1 tháng 12, xe thu gom rác đi qua các khu phố lúc 17 giờ 30."
    )
    await writer.get_by_role("button", name="Gửi duyệt").click()
    waiting = writer.locator("li[data-bulletin]", has_text="Lịch thu gom rác tháng 12")
    await expect(waiting).to_contain_text("xa.vien")  # in the queue, after the reload
    # A second one from a file, kept as a draft, then sent from the list of one's work.
    await writer.get_by_text("Soạn bản tin").click()
    await writer.get_by_label("Tiêu đề").fill("Nhạc hiệu")
    await writer.get_by_label("Hoặc một bản ghi âm").set_input_files(str(tone_mp3))
    await writer.get_by_role("button", name="Lưu bản nháp").click()
    draft = writer.locator("li[data-bulletin]", has_text="Nhạc hiệu")
    await expect(draft).to_contain_text("bản nháp")
    await draft.get_by_role("button", name="Gửi duyệt").click()
    await expect(draft.locator(".result")).to_have_text("submitted")

    board = await browser.new_page()
    await sign_in(board, base, "bien.tap")
    await board.goto(f"{base}/console/bulletins")
    spoken = board.locator("li[data-bulletin]", has_text="Lịch thu gom rác tháng 12")
    await expect(spoken.locator("audio")).to_have_count(1)  # the board hears what will air
    await expect(spoken).to_contain_text("xe thu gom rác đi qua các khu phố")  # and reads it
    await expect(spoken).to_contain_text("y tế")  # the topic, in Vietnamese
    await spoken.get_by_role("button", name="Duyệt").click()
    await expect(spoken.locator(".result")).to_have_text("approved")

    library = (await stack.client.get("/api/v1/bulletins")).json()["items"]
    by_title = {b["title"]: b for b in library}
    approved = by_title["Lịch thu gom rác tháng 12"]
    assert (approved["status"], approved["author"], approved["area_code"]) == (
        "approved",
        "xa.vien",
        COMMUNE,
    )
    assert approved["topic"] == "health" and approved["spoken"] is True
    assert approved["media_sha256"] is not None
    from_file = by_title["Nhạc hiệu"]
    assert from_file["status"] == "submitted" and from_file["spoken"] is False
    original = (await stack.client.get(f"/api/v1/media/{from_file['media_sha256']}")).json()
    assert original["original_name"] == tone_mp3.name  # uploaded by the page


async def test_the_report_draws_airtime_and_working_share_by_area(
    stack: Stack, browser: Browser, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = (await small_province(stack)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()  # one commune's clusters online: the rest of the province is not
    media = await upload(stack, tone_mp3)
    sent = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Bão số 9", "areas": [COMMUNE], "media_sha256": media["sha256"]},
    )
    assert sent.status_code == 201
    await stack.wait_broadcast(sent.json()["id"], lambda b: b["counts"].get("played") == len(specs))
    await make_user(stack, "truc.ban", role="province_officer")
    page = await browser.new_page()
    await sign_in(page, stack.settings.public_base_url, "truc.ban")
    await page.goto(f"{stack.settings.public_base_url}/console/reports")
    rows = page.locator("#airtime tbody tr")
    districts = [await r.get_attribute("data-area") for r in await rows.all()][1:]
    airtime = page.locator("figure.chart").nth(0).locator("rect.bar")
    working = page.locator("figure.chart").nth(1).locator("rect.bar")
    await expect(airtime).to_have_count(len(districts))
    # Only the commune's district aired anything, so its bar is the full width and the
    # others are empty; only it has clusters working (half of them), and it is drawn low.
    for district, bar, share in zip(
        districts, await airtime.all(), await working.all(), strict=True
    ):
        if district == DISTRICT:
            assert await bar.get_attribute("width") == "210.0"
            assert float(await share.get_attribute("width") or 0) > 0
            assert "low" in (await share.get_attribute("class") or "")  # one of two communes
        else:
            assert await bar.get_attribute("width") == "0.0", district
            assert await share.get_attribute("width") == "0.0", district
    # The month's report, from the page's link, as it prints: the province's figures.
    await page.click("#monthly-link")
    await expect(page.locator("h1")).to_contain_text("Báo cáo tháng")
    await expect(page.locator("[data-figure=broadcasts]")).to_have_text("1")
    await expect(page.locator("[data-figure=plays]")).to_have_text(str(len(specs)))
    await expect(page.locator("#emergencies tbody tr")).to_have_attribute(
        "data-broadcast", sent.json()["id"]
    )
    await expect(page.locator("#chart-days rect.bar")).to_have_count(
        await page.locator("#chart-days text").count() - 1  # one value written: one day aired
    )
    links = page.locator(".downloads a")
    assert [await a.get_attribute("href") for a in await links.all()][1].startswith(
        "/api/v1/reports/monthly.pdf?area=70&month="
    )
