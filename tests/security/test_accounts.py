"""Accounts: argon2 hashes, password rules, sign-in, lock-out, sessions and tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from accounts.models import AuthToken, User
from core.clock import ManualClock
from core.database import session_scope
from tests.security.helpers import PASSWORD, make_user, signed_in
from tests.support import Stack


async def test_passwords_are_argon2_and_tokens_are_stored_as_digests(stack: Stack) -> None:
    await make_user(stack, "thu.ha", role="province_officer")
    token = await signed_in(stack, "thu.ha")
    async with session_scope(stack.runtime.sessions) as session:
        user = await session.scalar(select(User).where(User.username == "thu.ha"))
        stored = (await session.scalars(select(AuthToken.token_sha256))).all()
    assert user is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert token not in stored and len(stored) == 1  # only a digest is kept

    me = await stack.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"name": "thu.ha", "role": "province_officer", "area": None}
    # The web console's cookie works the same way.
    cookie = await stack.client.get("/api/v1/auth/me", headers={"Cookie": f"bc_session={token}"})
    assert cookie.json()["name"] == "thu.ha"

    out = await stack.client.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
    )
    assert out.status_code == 204
    after = await stack.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401


async def test_password_rules_name_the_field(stack: Stack) -> None:
    for password, words in (
        ("ngan", "at least 10"),
        ("1234567890", "too easy"),
        ("aaaaaaaaaaaa", "too easy"),
        ("minh.anh-2026-x", "user name"),
    ):
        response = await stack.client.post(
            "/api/v1/users",
            json={"username": "minh.anh", "password": password, "role": "editor"},
        )
        assert response.status_code == 422, response.text
        assert words in response.json()["error"] and response.json()["detail"] == {
            "field": "password"
        }
    unknown_area = await stack.client.post(
        "/api/v1/users",
        json={"username": "minh.anh", "password": PASSWORD, "role": "editor", "area": "99999"},
    )
    assert unknown_area.status_code == 404
    bad_role = await stack.client.post(
        "/api/v1/users", json={"username": "minh.anh", "password": PASSWORD, "role": "king"}
    )
    assert bad_role.status_code == 422 and "role" in bad_role.text


async def test_wrong_passwords_hold_off_the_address_with_growing_waits(
    stack_factory: Callable[..., Awaitable[Stack]],
) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # 2 a.m., a flood
    stack = await stack_factory(
        clock=clock,
        login_free_failures=2,
        login_delay_base_s=2.0,
        login_max_failures=5,
        login_lockout_s=900,
    )
    await make_user(stack, "truc.ban", role="province_officer")

    async def attempt(password: str, name: str = "truc.ban") -> tuple[int, dict[str, Any]]:
        response = await stack.client.post(
            "/api/v1/auth/login", json={"username": name, "password": password}
        )
        stack.client.cookies.clear()  # act on as the development administrator
        return response.status_code, response.json()

    wrong = "sai mật khẩu rồi"
    assert [(await attempt(wrong))[0] for _ in range(3)] == [401, 401, 401]
    status, body = await attempt(PASSWORD)  # the third failure holds the address 2 s
    assert status == 429 and body["detail"] == {"retry_after_s": 2}
    clock.set(clock.now() + timedelta(seconds=2))
    assert (await attempt(wrong))[0] == 401  # the fourth: 4 s
    clock.set(clock.now() + timedelta(seconds=4))
    assert (await attempt(wrong))[0] == 401  # the fifth: the lock-out time, an alarm
    status, body = await attempt(PASSWORD)
    assert status == 429 and body["detail"]["retry_after_s"] == 900
    clock.set(clock.now() + timedelta(seconds=901))
    assert (await attempt(PASSWORD))[0] == 200  # held off no longer; the count starts again
    assert [(await attempt(wrong))[0] for _ in range(2)] == [401, 401]

    # An unknown name is answered in the very same way: no account oracle.
    statuses = []
    for _ in range(5):
        statuses.append((await attempt(wrong, "khong.co.ai"))[0])
        clock.set(clock.now() + timedelta(seconds=5))
    unknown_status, unknown = await attempt(wrong, "khong.co.ai")
    assert statuses == [401] * 5 and unknown_status == 429
    assert unknown["detail"]["retry_after_s"] == 895

    # An administrator lifts the holds on a name at once.
    for _ in range(5):
        await attempt(wrong)
        clock.set(clock.now() + timedelta(seconds=5))
    assert (await attempt(PASSWORD))[0] == 429
    lifted = await stack.client.patch("/api/v1/users/truc.ban", json={"unlock": True})
    assert lifted.status_code == 200
    assert (await attempt(PASSWORD))[0] == 200


async def test_api_tokens_expire_and_end_with_a_password_change_or_deactivation(
    stack_factory: Callable[..., Awaitable[Stack]],
) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    stack = await stack_factory(clock=clock, session_ttl_s=3600)
    await make_user(stack, "ky.thuat", role="technician")
    session = await signed_in(stack, "ky.thuat")
    auth = {"Authorization": f"Bearer {session}"}
    # A session left open on a shared computer does not mint a long token by itself.
    for body, status, field in (
        ({"name": "laptop"}, 422, "password"),
        ({"name": "laptop", "password": "không phải mật khẩu"}, 401, "password"),
        ({"name": "laptop", "password": PASSWORD, "days": 366}, 422, "days"),
    ):
        refused = await stack.client.post("/api/v1/auth/tokens", json=body, headers=auth)
        assert refused.status_code == status and field in refused.text, refused.text
    created = await stack.client.post(
        "/api/v1/auth/tokens",
        json={"name": "laptop", "days": 2, "password": PASSWORD},
        headers=auth,
    )
    assert created.status_code == 201
    api = {"Authorization": f"Bearer {created.json()['token']}"}

    clock.set(clock.now() + timedelta(hours=2))  # the session is over, the token is not
    assert (await stack.client.get("/api/v1/auth/me", headers=auth)).status_code == 401
    assert (await stack.client.get("/api/v1/auth/me", headers=api)).status_code == 200
    clock.set(clock.now() + timedelta(days=2))
    assert (await stack.client.get("/api/v1/auth/me", headers=api)).status_code == 401

    fresh = {"Authorization": f"Bearer {await signed_in(stack, 'ky.thuat')}"}
    changed = await stack.client.post(
        "/api/v1/auth/password",
        json={"current": PASSWORD, "new": "đổi mật khẩu mới năm 2027"},
        headers=fresh,
    )
    assert changed.status_code == 204
    assert (await stack.client.get("/api/v1/auth/me", headers=fresh)).status_code == 401
    again = {
        "Authorization": f"Bearer {await signed_in(stack, 'ky.thuat', 'đổi mật khẩu mới năm 2027')}"
    }
    deactivated = await stack.client.patch("/api/v1/users/ky.thuat", json={"active": False})
    assert deactivated.status_code == 200
    assert (await stack.client.get("/api/v1/auth/me", headers=again)).status_code == 401
    refused = await stack.client.post(
        "/api/v1/auth/login",
        json={"username": "ky.thuat", "password": "đổi mật khẩu mới năm 2027"},
    )
    stack.client.cookies.clear()
    assert refused.status_code == 401 and "deactivated" in refused.json()["error"]
