"""Requests a fuzzer found answered 500 (issue 20): numbers past 64 bits in paging and
ids, null for a field whose column holds a value, a control character in a name that
goes into a workbook. Each is now a 4xx naming the field, or simply works."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.factories import small_province
from tests.support import Stack

HUGE = "14532077709911373381632"


async def test_numbers_past_64_bits_name_the_parameter(stack: Stack) -> None:
    await small_province(stack)
    for method, url, field in (
        ("GET", f"/api/v1/areas?offset={HUGE}", "offset"),
        ("GET", f"/api/v1/audit?offset={HUGE}", "offset"),
        ("GET", f"/api/v1/rollouts/{HUGE}", "rollout_id"),
        ("POST", f"/api/v1/rollouts/{HUGE}/pause", "rollout_id"),
        ("POST", f"/api/v1/alarms/{HUGE}/acknowledge", "alarm_id"),
        ("POST", f"/api/v1/inbox/{HUGE}/accept", "item_id"),
        ("GET", "/api/v1/rollouts/2147483648", "rollout_id"),  # past an int32 column
    ):
        response = await stack.client.request(method, url)
        assert response.status_code == 422, (url, response.text)
        assert field in response.text, (url, response.text)


async def test_null_for_a_field_that_holds_a_value_is_422(stack: Stack) -> None:
    await small_province(stack)
    for field in ("kind", "name", "area_code", "speakers"):
        response = await stack.client.patch("/api/v1/clusters/25216-01", json={field: None})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["field"] == field
    renamed = await stack.client.patch("/api/v1/areas/25216", json={"name": None})
    assert renamed.status_code == 422 and renamed.json()["detail"][0]["field"] == "name"


async def test_a_control_character_in_a_name_does_not_break_the_monthly_workbook(
    stack: Stack,
) -> None:
    await small_province(stack)
    renamed = await stack.client.patch("/api/v1/areas/689", json={"name": "Huyện\x07 Đồng\x1bXoài"})
    assert renamed.status_code == 200, renamed.text
    month = datetime.now(UTC).strftime("%Y-%m")
    workbook = await stack.client.get(f"/api/v1/reports/monthly.xlsx?area=70&month={month}")
    assert workbook.status_code == 200, workbook.text
    assert workbook.content[:2] == b"PK"  # a real workbook
