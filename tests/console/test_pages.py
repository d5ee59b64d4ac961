"""The web console in a real browser (Debian's Chromium driven by Playwright): a duty
officer signs in with the keyboard, sends an emergency to a commune, confirms the
summary and watches every cluster confirm live; Vietnamese by default, English on
request; a phone-sized screen without sideways scrolling."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.async_api import Browser, expect

from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.console.helpers import COMMUNE, DISTRICT, morning_news_from_tomorrow
from tests.console.helpers import sign_in as _sign_in
from tests.factories import small_province
from tests.security.helpers import make_user
from tests.support import Stack


async def test_a_duty_officer_sends_an_emergency_and_watches_it_confirm(
    stack: Stack,
    browser: Browser,
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
) -> None:
    specs = (await small_province(stack, eboards=True)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    await make_user(stack, "truc.ban", role="province_officer")
    base = stack.settings.public_base_url
    page = await browser.new_page()
    await _sign_in(page, base, "truc.ban")
    await expect(page.locator("h1")).to_contain_text("Xin chào, truc.ban")

    await page.get_by_role("link", name="Phát tin khẩn cấp").first.click()
    await expect(page.locator("h1")).to_have_text("Phát tin khẩn cấp")
    await page.locator(f"input[name=areas][value='{COMMUNE}']").check()
    await page.get_by_label("Tiêu đề").fill("Cảnh báo lũ quét")
    await page.get_by_label("Hoặc một bản ghi âm").set_input_files(str(tone_mp3))
    await page.get_by_role("button", name="Xem lại").click()
    speakers = len([s for s in specs if s.kind != "eboard"])
    eboards = len(specs) - speakers
    await expect(page.locator("#summary-text")).to_have_text(
        f"{speakers} cụm loa và {eboards} bảng điện tử tại 1 xã sẽ phát ngay lập tức."
    )
    await page.get_by_role("button", name="Phát tin khẩn cấp ngay").click()

    await page.wait_for_url(f"{base}/console/broadcasts/**")
    await expect(page.locator("#total")).to_have_text(str(len(specs)))
    # Live, by server-sent events: every cluster confirms, then every one has played.
    await expect(page.locator("#confirmed")).to_have_text(str(len(specs)), timeout=30_000)
    await expect(page.locator("[data-state=played]")).to_have_text(str(len(specs)), timeout=30_000)
    await expect(page.locator("#status")).to_have_text("Hoàn tất: mọi cụm loa đã có kết quả")
    await expect(page.locator("#silent-total")).to_have_text("0")
    broadcast_id = page.url.rsplit("/", 1)[-1]
    assert fleet.count(lambda d: d.play_counts[broadcast_id] == 1) == len(specs)


async def test_english_on_request_phone_screens_and_roles(stack: Stack, browser: Browser) -> None:
    await small_province(stack)
    await make_user(stack, "ky.thuat", role="technician", area=COMMUNE)
    base = stack.settings.public_base_url
    phone = await browser.new_page(viewport={"width": 390, "height": 844})
    await _sign_in(phone, base, "ky.thuat")
    # A technician has no emergency button, and the emergency page says so.
    assert await phone.get_by_role("link", name="Phát tin khẩn cấp").count() == 0
    response = await phone.goto(f"{base}/console/emergency")
    assert response is not None and response.status == 403
    # Health of its commune, numbers written the Vietnamese way; another area refused.
    await phone.goto(f"{base}/console/health")
    first_row = phone.locator("tbody tr").first
    await expect(first_row.locator("th")).not_to_be_empty()
    wide = await phone.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert wide is False, "the page scrolls sideways on a phone"
    outside = await phone.goto(f"{base}/console/health?area=70")
    assert outside is not None and outside.status == 403

    await phone.goto(f"{base}/console?lang=en")
    await expect(phone.locator("h1")).to_have_text("Hello, ky.thuat")
    await phone.goto(f"{base}/console/health")  # the choice is remembered
    await expect(phone.locator("h1")).to_have_text("Fleet health")
    assert await phone.locator("html").get_attribute("lang") == "en"


async def test_a_recording_made_in_the_browser_is_broadcast(
    stack: Stack, browser: Browser, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await small_province(stack)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)  # every cluster of the commune
    await fleet.start()
    await make_user(stack, "truc.ban", role="province_officer")
    base = stack.settings.public_base_url
    page = await browser.new_page()
    await _sign_in(page, base, "truc.ban")
    await page.goto(f"{base}/console/emergency")
    await page.locator(f"input[name=areas][value='{COMMUNE}']").check()
    await page.get_by_label("Tiêu đề").fill("Thông báo khẩn từ xã")
    await page.get_by_role("button", name="Ghi âm ngay").click()
    await expect(page.locator("#record-status")).to_have_text("Đang ghi âm…")
    await page.wait_for_timeout(1500)  # the officer speaks for a second and a half
    await page.get_by_role("button", name="Dừng").click()
    await expect(page.locator("#record-status")).to_have_text("Đã ghi âm: sẽ được gửi đi")
    await page.get_by_role("button", name="Xem lại").click()
    await page.get_by_role("button", name="Phát tin khẩn cấp ngay").click()
    await page.wait_for_url(f"{base}/console/broadcasts/**")
    broadcast_id = page.url.rsplit("/", 1)[-1]
    await expect(page.locator("#status")).to_have_text(
        "Hoàn tất: mọi cụm loa đã có kết quả", timeout=30_000
    )
    sent = await stack.broadcast(broadcast_id)
    media = (await stack.client.get(f"/api/v1/media/{sent['media_sha256']}")).json()
    assert media["original_name"] == "recording.webm", media
    assert fleet.count(lambda d: d.play_counts[broadcast_id] == 1) == len(specs)


async def test_a_technician_finds_a_cluster_on_the_map_and_sets_its_volume(
    stack: Stack, browser: Browser, fleet_factory: Callable[..., Fleet]
) -> None:
    province = await small_province(stack, clusters_per_commune=2, eboards=True)
    specs = province.speakers(COMMUNE)  # three: two run, one stays offline
    fleet = fleet_factory(specs[:2])
    await fleet.start()
    await make_user(stack, "ky.thuat", role="technician", area=COMMUNE)
    base = stack.settings.public_base_url
    page = await browser.new_page()
    await _sign_in(page, base, "ky.thuat")
    await page.goto(f"{base}/console/health?area={COMMUNE}")
    # Drawn by the page (no tile server): one point per cluster, the two online ones green.
    await expect(page.locator("svg circle")).to_have_count(len(specs) + 1)  # + the e-board
    await expect(page.locator("svg circle.ok")).to_have_count(2)
    await page.locator(f"svg a[href='/console/clusters/{specs[0].code}']").click()
    await expect(page.locator("h1")).to_contain_text(specs[0].code)
    await page.get_by_label("Âm lượng").fill("35")
    await page.get_by_role("button", name="Đặt âm lượng").click()
    await expect(page.locator("#operate-result")).to_have_text("set_volume: xong", timeout=20_000)
    assert fleet.devices[specs[0].code].volume == 35


async def test_a_commune_operator_reads_the_week_of_the_commune(
    stack: Stack, browser: Browser, tone_mp3: Path
) -> None:
    await morning_news_from_tomorrow(stack, tone_mp3)
    await make_user(stack, "xa.vien", role="commune_operator", area=COMMUNE)
    base = stack.settings.public_base_url
    page = await browser.new_page()
    await _sign_in(page, base, "xa.vien")
    await page.get_by_role("link", name="Lịch phát").first.click()
    days = page.locator("section.day")
    await expect(days).to_have_count(7)
    await expect(days.nth(0)).to_contain_text("Không có lịch phát")  # today: it starts tomorrow
    for n in range(1, 7):
        await expect(days.nth(n)).to_contain_text("06:30")
        await expect(days.nth(n)).to_contain_text("Bản tin buổi sáng")
    await page.get_by_role("link", name="Sau →").click()
    await expect(page.locator("section.day").nth(6)).to_contain_text("06:30")
    await page.get_by_role("link", name="Một ngày").click()  # the day view
    await expect(page.locator("section.day")).to_have_count(1)
    await expect(page.locator("section.day")).to_contain_text("06:30")
    await page.get_by_role("link", name="Cả tuần").click()
    await expect(page.locator("section.day")).to_have_count(7)
    refused = await page.goto(f"{base}/console/schedule?area=70")
    assert refused is not None and refused.status == 403


async def test_the_board_reviews_and_a_commune_puts_a_bulletin_from_above_on_air(
    stack: Stack, browser: Browser, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    specs = (await small_province(stack)).of(COMMUNE)
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    clip = await upload(stack, tone_mp3)
    drafts = {}
    for title in ("Lịch tiêm phòng", "Tin chưa kiểm chứng"):
        created = await stack.client.post(
            "/api/v1/bulletins", json={"title": title, "media_sha256": clip["sha256"]}
        )
        drafts[title] = created.json()["id"]
        assert (await stack.client.post(f"/api/v1/bulletins/{drafts[title]}/submit")).is_success
    await make_user(stack, "bien.tap", role="editor")
    await make_user(stack, "xa.vien", role="commune_operator", area=COMMUNE)
    base = stack.settings.public_base_url

    board = await browser.new_page()
    await _sign_in(board, base, "bien.tap")
    await board.goto(f"{base}/console/bulletins")
    good = board.locator(f"li[data-bulletin='{drafts['Lịch tiêm phòng']}']")
    bad = board.locator(f"li[data-bulletin='{drafts['Tin chưa kiểm chứng']}']")
    await good.get_by_role("button", name="Duyệt").click()
    await expect(good.locator(".result")).to_have_text("approved")
    await bad.get_by_role("button", name="Từ chối").click()  # a rejection needs a reason
    await expect(bad.locator(".result")).not_to_have_text("")
    assert await bad.locator(".result").text_content() != "rejected"
    await bad.get_by_label("Lý do").fill("Nguồn tin chưa được xác minh")
    await bad.get_by_role("button", name="Từ chối").click()
    await expect(bad.locator(".result")).to_have_text("rejected")

    sent = await stack.client.post(
        f"/api/v1/bulletins/{drafts['Lịch tiêm phòng']}/distribute",
        json={"areas": [COMMUNE]},
        headers={"x-actor": "truc.ban", "x-role": "province_officer"},
    )
    assert sent.status_code == 200, sent.text
    commune = await browser.new_page()
    await _sign_in(commune, base, "xa.vien")
    await commune.get_by_role("link", name="Hộp thư").first.click()
    [item] = await commune.locator("li[data-item]").all()
    await expect(item).to_contain_text("Lịch tiêm phòng")
    await expect(item.locator(".state")).to_have_text("chờ xử lý")
    await item.get_by_role("button", name="Phát sóng").click()
    await expect(item.locator(".state")).to_have_text("accepted")
    broadcasts = (await stack.client.get("/api/v1/broadcasts")).json()["items"]
    assert [b["title"] for b in broadcasts] == ["Lịch tiêm phòng"]


async def test_a_commune_adds_a_daily_slot_and_sees_the_overlap_before_saving(
    stack: Stack, browser: Browser, tone_mp3: Path
) -> None:
    bulletin, tomorrow = await morning_news_from_tomorrow(stack, tone_mp3)
    await make_user(stack, "xa.vien", role="commune_operator", area=COMMUNE)
    base = stack.settings.public_base_url
    page = await browser.new_page()
    await _sign_in(page, base, "xa.vien")
    await page.goto(f"{base}/console/schedule")
    await page.get_by_text("Thêm vào lịch phát").click()
    await page.get_by_label("Tiêu đề").fill("Thông báo tiêm phòng")
    await page.get_by_label("Bản tin đã duyệt").select_option(bulletin["id"])
    await page.get_by_label("Lần phát đầu (giờ địa phương)").fill(f"{tomorrow.isoformat()}T06:30")
    await page.get_by_label("Lặp lại").select_option("FREQ=DAILY")
    await page.get_by_role("button", name="Kiểm tra trùng lịch").click()
    await expect(page.locator("#s-overlaps li")).to_contain_text("Trùng với «Bản tin buổi sáng»")
    await page.get_by_role("button", name="Lưu").click()
    await expect(page.locator("section.day").nth(1)).to_contain_text("Thông báo tiêm phòng")
    await expect(page.locator("section.day").nth(1)).to_contain_text("Bản tin buổi sáng")
    saved = (await stack.client.get("/api/v1/schedules")).json()["items"]
    assert sorted(s["title"] for s in saved) == ["Bản tin buổi sáng", "Thông báo tiêm phòng"]


async def test_the_report_page_shows_the_period_and_offers_a_csv(
    stack: Stack, browser: Browser, tone_mp3: Path
) -> None:
    await small_province(stack)
    media = await upload(stack, tone_mp3)
    sent = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Bão số 9", "areas": [COMMUNE], "media_sha256": media["sha256"]},
    )
    assert sent.status_code == 201
    await make_user(stack, "truc.ban", role="province_officer")
    base = stack.settings.public_base_url
    page = await browser.new_page()
    await _sign_in(page, base, "truc.ban")
    await page.get_by_role("link", name="Báo cáo").first.click()
    province = page.locator("tr[data-area='70'] td")
    await expect(province.nth(0)).to_have_text("1")  # broadcasts
    await expect(province.nth(1)).to_have_text("1")  # emergencies
    await page.get_by_role("link", name="7 ngày qua").click()
    await expect(page.locator("#period a[aria-current=page]")).to_have_text("7 ngày qua")
    csv_link = await page.get_by_role("link", name="Tải về dạng CSV").get_attribute("href")
    assert csv_link is not None
    exported = await stack.client.get(csv_link)
    assert exported.status_code == 200 and exported.text.startswith("area_code,name,broadcasts")


async def test_an_emergency_from_an_approved_bulletin(
    stack: Stack, browser: Browser, tone_mp3: Path
) -> None:
    await small_province(stack)
    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(
        stack, title="Cảnh báo cháy rừng", media_sha256=media["sha256"]
    )
    await make_user(stack, "truc.ban", role="province_officer")
    base = stack.settings.public_base_url
    page = await browser.new_page()
    await _sign_in(page, base, "truc.ban")
    await page.goto(f"{base}/console/emergency")
    # Chosen on the map: the commune's outline, clicked, ticks it in the list and lights up.
    on_map = page.locator(f"g.commune[data-code='{COMMUNE}']")
    await on_map.click()
    await expect(on_map).to_have_attribute("aria-checked", "true")
    await expect(page.locator(f"input[name=areas][value='{COMMUNE}']")).to_be_checked()
    await expect(page.locator("g.commune[aria-checked=true]")).to_have_count(1)
    # A district ticked in the list lights every commune under it; clicked off, none.
    district = page.locator(f"input[name=areas][data-path$='/{DISTRICT}/']")
    under = await page.locator(f"g.commune[data-path^='/70/{DISTRICT}/']").count()
    assert under > 1
    await district.check()
    await expect(page.locator("g.commune[aria-checked=true]")).to_have_count(under)
    await district.uncheck()
    await expect(page.locator("g.commune[aria-checked=true]")).to_have_count(1)
    # The keyboard: Space on a focused commune ticks it off again, and on again.
    await on_map.focus()
    await page.keyboard.press(" ")
    await expect(on_map).to_have_attribute("aria-checked", "false")
    await page.keyboard.press("Enter")
    await expect(on_map).to_have_attribute("aria-checked", "true")
    await page.get_by_label("Tiêu đề").fill("Cháy rừng khẩn cấp")
    await page.get_by_label("Một bản tin đã duyệt").select_option(bulletin["id"])
    await page.get_by_label("Đây là tin diễn tập", exact=False).check()
    await page.get_by_role("button", name="Xem lại").click()
    await page.get_by_role("button", name="Phát tin khẩn cấp ngay").click()
    await page.wait_for_url(f"{base}/console/broadcasts/**")
    sent = await stack.broadcast(page.url.rsplit("/", 1)[-1])
    assert sent["bulletin_id"] == bulletin["id"] and sent["media_sha256"] == media["sha256"]
    assert sent["target_areas"] == [COMMUNE]
    assert sent["drill"] is True
    await expect(page.locator("#drill")).to_have_text("Diễn tập")


async def test_an_emergency_from_a_standard_warning(
    stack: Stack, browser: Browser, tone_mp3: Path
) -> None:
    await small_province(stack)
    media = await upload(stack, tone_mp3)
    put = await stack.client.put(
        "/api/v1/warnings/flood-evacuate",
        json={"title": "Lũ: sơ tán ngay", "media_sha256": media["sha256"]},
    )
    assert put.status_code == 201, put.text
    await make_user(stack, "truc.ban", role="province_officer")
    base = stack.settings.public_base_url
    page = await browser.new_page()
    await _sign_in(page, base, "truc.ban")
    await page.goto(f"{base}/console/emergency")
    await page.locator(f"g.commune[data-code='{COMMUNE}']").click()
    await page.get_by_label("Một cảnh báo soạn sẵn", exact=False).select_option("flood-evacuate")
    await expect(page.get_by_label("Tiêu đề")).to_have_value("Lũ: sơ tán ngay")  # its own
    await page.get_by_role("button", name="Xem lại").click()
    await page.get_by_role("button", name="Phát tin khẩn cấp ngay").click()
    await page.wait_for_url(f"{base}/console/broadcasts/**")
    sent = await stack.broadcast(page.url.rsplit("/", 1)[-1])
    assert sent["media_sha256"] == media["sha256"] and sent["title"] == "Lũ: sơ tán ngay"
    assert sent["target_areas"] == [COMMUNE]


# Every field named for a screen reader, every image described, the page's language set,
# and nothing that can take the focus hidden from the keyboard.
A11Y = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("html has no lang");
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label");
    if (!named) problems.push(`unlabelled ${el.tagName} ${el.name || el.id}`);
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push(`image without alt ${img.src}`);
  }
  for (const el of document.querySelectorAll("[tabindex]")) {
    if (Number(el.getAttribute("tabindex")) > 0) problems.push("positive tabindex");
  }
  if (!document.querySelector("h1")) problems.push("no h1");
  return problems;
}"""


async def test_every_page_names_its_fields_for_screen_readers(
    stack: Stack, browser: Browser
) -> None:
    specs = (await small_province(stack)).specs
    await make_user(stack, "quan.tri", role="admin")
    base = stack.settings.public_base_url
    page = await browser.new_page()
    await _sign_in(page, base, "quan.tri")
    pages = [
        "/console",
        "/console/emergency",
        "/console/health",
        "/console/schedule",
        "/console/bulletins",
        "/console/inbox",
        "/console/reports",
        "/console/reports/monthly",
        f"/console/clusters/{specs[0].code}",
        "/console/login",
    ]
    for path in pages:
        for lang in ("vi", "en"):
            response = await page.goto(f"{base}{path}?lang={lang}")
            assert response is not None and response.status == 200, path
            assert await page.evaluate(A11Y) == [], (path, lang)
