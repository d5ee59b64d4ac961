"""The audit log records who did and who tried, and nothing can change it afterwards."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.database import session_scope
from tests.broadcast.helpers import upload
from tests.factories import small_province
from tests.security.helpers import make_user, signed_in
from tests.support import Stack

COMMUNE = "25216"


async def test_changes_refusals_and_sign_ins_are_recorded_with_who_where_and_how(
    stack: Stack, tone_mp3: Path
) -> None:
    await small_province(stack)
    media = await upload(stack, tone_mp3)
    await make_user(stack, "truc.ban", role="province_officer")
    await make_user(stack, "xa.vien", role="commune_operator", area=COMMUNE)
    officer = {"Authorization": f"Bearer {await signed_in(stack, 'truc.ban')}"}
    operator = {"Authorization": f"Bearer {await signed_in(stack, 'xa.vien')}"}

    sent = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Lũ", "areas": [COMMUNE], "media_sha256": media["sha256"]},
        headers=officer,
    )
    assert sent.status_code == 201
    denied = await stack.client.post(
        "/api/v1/broadcasts",
        json={"title": "Giả", "areas": ["70"], "media_sha256": media["sha256"]},
        headers=operator,
    )
    assert denied.status_code == 403
    wrong = await stack.client.post(
        "/api/v1/auth/login", json={"username": "truc.ban", "password": "không phải mật khẩu"}
    )
    assert wrong.status_code == 401

    log = (await stack.client.get("/api/v1/audit?limit=200")).json()["items"]
    sends = [e for e in log if e["action"] == "POST /api/v1/broadcasts"]
    ok = next(e for e in sends if e["outcome"] == "ok")
    assert ok["actor"] == "truc.ban" and ok["role"] == "province_officer"
    assert ok["address"] == "127.0.0.1" and ok["status"] == 201
    assert ok["target"].endswith(f"-> {sent.json()['id']}")
    assert ok["detail"]["areas"] == [COMMUNE] and ok["detail"]["title"] == "Lũ"
    refused = next(e for e in sends if e["outcome"] == "denied")
    assert refused["actor"] == "xa.vien" and refused["area"] == COMMUNE
    assert (
        refused["detail"]["areas"] == ["70"]
        and "may not send emergency" in refused["detail"]["error"]
    )
    failed_login = next(
        e for e in log if e["action"] == "POST /api/v1/auth/login" and e["status"] == 401
    )
    assert failed_login["actor"] == "anonymous" and failed_login["target"].endswith("truc.ban")
    # Reading is not recorded unless it was refused: the log stays about decisions.
    assert not any(e["action"].startswith("GET") and e["outcome"] == "ok" for e in log)

    only_denied = (await stack.client.get("/api/v1/audit?outcome=denied")).json()
    assert {e["actor"] for e in only_denied["items"]} == {"xa.vien", "anonymous"}  # + the login
    by_actor = (await stack.client.get("/api/v1/audit?actor=truc.ban&action=broadcasts")).json()
    assert by_actor["total"] == 1
    exported = await stack.client.get("/api/v1/audit/export.csv?actor=xa.vien")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert exported.headers["content-type"].startswith("text/csv")
    assert [r["outcome"] for r in rows] == ["denied"] and rows[0]["actor"] == "xa.vien"
    # Only administrators read it.
    assert (await stack.client.get("/api/v1/audit", headers=officer)).status_code == 403


async def test_nothing_can_change_or_delete_the_record(stack: Stack) -> None:
    await make_user(stack, "ai.do", role="editor")  # one event at least
    for method in ("PATCH", "PUT", "DELETE"):
        response = await stack.client.request(method, "/api/v1/audit", json={})
        assert response.status_code == 405
    for statement in ("UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with session_scope(stack.runtime.sessions) as session:
                await session.execute(text(statement))
    async with session_scope(stack.runtime.sessions) as session:
        actors = (await session.execute(text("SELECT actor FROM audit_events"))).scalars().all()
    assert "admin" in actors and "someone else" not in actors
