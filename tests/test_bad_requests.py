"""Requests a fuzzer found answered 500 (issue 20): numbers past 64 bits in paging and
ids, null for a field whose column holds a value, a control character in a name that
goes into a workbook. Each is now a 4xx naming the field, or simply works."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI

from app.errors import InternalErrors
from devstack.broker import free_port
from tests.factories import small_province
from tests.support import Stack, eventually

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


async def test_every_refusal_has_one_shape_and_the_document_says_so(stack: Stack) -> None:
    """404, 405, an unparseable body (400) and a model's own rule (422) answer
    `{error, detail}`; the 422 names the field a person should change; /openapi.json
    declares this shape, not FastAPI's default."""
    await small_province(stack)
    unknown = await stack.client.get("/api/v1/no-such-thing")
    wrong_method = await stack.client.put("/api/v1/areas")
    garbled = await stack.client.post(
        "/api/v1/media",
        content=b"--x\r\nContent-Disposition form-data\r\n\r\nabc\r\n--x--\r\n",  # no colon
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    no_target = await stack.client.post(
        "/api/v1/broadcasts", json={"title": "x", "class": "normal", "text": "Xin chào"}
    )
    for response, status in ((unknown, 404), (wrong_method, 405), (garbled, 400)):
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error", "detail"} and response.json()["error"]
    assert wrong_method.headers["allow"]
    assert no_target.status_code == 422
    assert no_target.json()["detail"] == [
        {"field": "areas", "error": "give at least one target in areas or clusters"}
    ]

    schemas = (await stack.client.get("/openapi.json")).json()["components"]["schemas"]
    assert set(schemas["HTTPValidationError"]["properties"]) == {"error", "detail"}
    assert set(schemas["ValidationError"]["properties"]) == {"field", "error"}


async def test_the_nul_character_is_refused_naming_where_it_is(stack: Stack) -> None:
    """PostgreSQL cannot store NUL (a 500 there before); on both databases it is a 422
    naming the parameter or field, and nothing is written."""
    await small_province(stack)
    in_query = await stack.client.get("/api/v1/health?area=%00")
    in_json = await stack.client.post(
        "/api/v1/areas",
        json={"code": "99999", "name": "Xã\u0000", "level": "commune", "parent_code": "689"},
    )
    in_path = await stack.client.get("/api/v1/clusters/25216%0001")
    assert in_query.status_code == 422 and in_query.json()["detail"][0]["field"] == "area"
    assert in_json.status_code == 422 and in_json.json()["detail"][0]["field"] == "name"
    assert in_path.status_code == 422 and in_path.json()["detail"][0]["field"] == "path"
    assert (await stack.client.get("/api/v1/areas/99999")).status_code == 404
    # A backslash-u sequence that is only text is not a NUL.
    literal = await stack.client.post(
        "/api/v1/areas",
        json={"code": "99998", "name": "Xã \\u0000", "level": "commune", "parent_code": "689"},
    )
    assert literal.status_code == 201, literal.text


async def test_after_an_internal_error_the_connection_still_serves() -> None:
    """A gateway posting CAP alerts on one keep-alive connection lost the alert after a
    bad one: uvicorn closed the connection when the exception escaped the app. The
    outermost layer answers the 500 itself (one shape) and the connection stays."""
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/fine")
    async def fine() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(InternalErrors)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _started(server), bool, what="the server listening")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = []
        for path in ("/boom", "/fine"):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            answers.append((head.split(b" ")[1], json.loads(await reader.readexactly(length))))
        writer.close()
    finally:
        server.should_exit = True
        await serving
    assert answers == [
        (b"500", {"error": "internal error", "detail": {"status": 500}}),
        (b"200", {"ok": True}),
    ]


async def _started(server: uvicorn.Server) -> bool:
    return server.started


async def test_what_the_fuzzer_found_next_is_a_4xx_naming_the_field(stack: Stack) -> None:
    """Found by tests/test_fuzz_openapi.py at 40 examples an operation: an empty language
    on an emergency (valid for the broadcast, not for the bulletin it makes), a CSV with
    a bare carriage return or a NUL, NUL in a firmware form field (PostgreSQL)."""
    await small_province(stack)
    emergency = await stack.client.post(
        "/api/v1/broadcasts",
        json={
            "title": "x",
            "class": "emergency",
            "text": "Xin chào",
            "language": "",
            "areas": ["70"],
        },
    )
    assert emergency.status_code == 422 and emergency.json()["detail"][0]["field"] == "language"
    for body, status in (
        (b"code,name,level\r\n70,T\xe1\xbb\x89nh\rX,province\r\n", 200),  # a bare CR: a line end
        (b"code,name,level\n70,T\x00,province\n", 422),
    ):
        response = await stack.client.post(
            "/api/v1/areas/import", files={"file": ("areas.csv", body, "text/csv")}
        )
        assert response.status_code == status, (body, response.text)
        if status == 422:
            assert response.json()["detail"]["field"] == "file"
    firmware = await stack.client.post(
        "/api/v1/firmware",
        files={"file": ("fw.bin", b"\x7fELF" + bytes(64), "application/octet-stream")},
        data={"version": "1.0\x00", "model": "LS-4G"},
    )
    assert firmware.status_code == 422, firmware.text
    assert firmware.json()["detail"][0]["field"] == "version"
