"""Sign-in, sign-out, API tokens, one's own password; accounts for administrators."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import passwords, service
from accounts.models import User
from accounts.schemas import (
    Login,
    LoginResult,
    PasswordChange,
    TokenCreate,
    TokenCreated,
    UserCreate,
    UserRead,
    UserUpdate,
)
from accounts.throttle import TooManyAttempts
from audit import service as audit_service
from audit.models import AuditEvent, AuditOutcome
from core.context import Context
from core.counters import HttpStats
from core.database import session_scope
from core.errors import InvalidInput, Unauthenticated
from core.policy import Action
from web.deps import SESSION_COOKIE, ActorDep, RuntimeDep, get_runtime
from web.guard import allow
from web.targets import From

router = APIRouter(tags=["accounts"])
log = logging.getLogger(__name__)


class SigningIn(Context, Protocol):
    http: HttpStats  # sign-in alarms are counted for /metrics


SignInDep = Annotated[SigningIn, Depends(get_runtime)]


def _prod(runtime: Context) -> bool:
    return runtime.settings.environment == "production"


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _alarm(username: str, address: str, failures: int, now: datetime) -> AuditEvent:
    """For administrators (GET /api/v1/audit?outcome=alarm, and the metric
    broadcast_sign_in_alarms_total for an alerting rule): someone keeps guessing."""
    return audit_service.event(
        at=now,
        actor="anonymous",
        action="sign-in alarm",
        outcome=AuditOutcome.ALARM,
        address=address,
        target=username,
        detail={"failures": failures, "held_s": "lock-out"},
    )


@router.post("/api/v1/auth/login")
async def login(
    data: Login, request: Request, response: Response, runtime: SignInDep
) -> LoginResult:
    """A session: the token in the answer (for the CLI and scripts) and as an HttpOnly
    cookie (for the web console). Wrong passwords slow down the address they come from,
    never the account (accounts/throttle.py): 429 with Retry-After while an address waits.
    The password is checked in a worker thread, outside the write lock that sending takes:
    a flood of sign-ins must not delay an emergency."""
    settings, now = runtime.settings, runtime.clock.now()
    request.state.audit_target = data.username
    address = _address(request)  # its per-address budget was spent in app/gate.py
    async with session_scope(runtime.sessions) as session:
        user, held = await service.sign_in_state(session, data.username, address, now=now)
    if held is not None:
        raise held
    try:
        ok = await passwords.verify_aside(user.password_hash if user else None, data.password)
    except passwords.Busy:
        raise TooManyAttempts(
            "the server is checking many sign-ins: try again in a moment", retry_after_s=1
        ) from None
    async with runtime.writing() as session:
        attempt = await service.settle_sign_in(
            session,
            data.username,
            address,
            password_ok=ok,
            settings=settings,
            now=now,
            password_for_rehash=data.password,
        )
        if attempt.alarm:
            session.add(_alarm(data.username, address, attempt.alarm, now))
        if attempt.user is not None:
            raw, token = await service.issue_token(
                session,
                attempt.user,
                kind="session",
                name="sign-in",
                lifetime=timedelta(seconds=settings.session_ttl_s),
                address=address,
                now=now,
            )
            result = LoginResult(
                token=raw, expires_at=token.expires_at, user=service.read(attempt.user)
            )
    if attempt.alarm:
        runtime.http.sign_in_alarms += 1
        log.warning(
            "sign-in alarm: %d wrong passwords in a row for %r from %s",
            attempt.alarm,
            data.username,
            address,
        )
    if attempt.error is not None:  # raised after the commit: the failure is counted
        raise attempt.error
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://"),
    )
    return result


@router.post(
    "/api/v1/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[allow(Action.SELF, From.ANYWHERE)],
)
async def logout(
    request: Request, response: Response, runtime: RuntimeDep, actor: ActorDep
) -> None:
    raw = _presented_token(request)
    if raw is not None:
        async with runtime.writing() as session:
            await service.revoke(session, raw, now=runtime.clock.now())
    response.delete_cookie(SESSION_COOKIE)


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


@router.get("/api/v1/auth/me", dependencies=[allow(Action.SELF, From.ANYWHERE)])
async def me(actor: ActorDep) -> dict[str, str | None]:
    return {"name": actor.name, "role": actor.role.value, "area": actor.area}


@router.post(
    "/api/v1/auth/tokens",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.SELF, From.ANYWHERE)],
)
async def create_token(
    data: TokenCreate, request: Request, runtime: RuntimeDep, actor: ActorDep
) -> TokenCreated:
    """A long-lived API token for the CLI or a script, acting as oneself; the password is
    asked again (checked in a worker thread, outside the write lock)."""
    settings, now = runtime.settings, runtime.clock.now()
    if data.days is not None and data.days > settings.api_token_ttl_days:
        raise InvalidInput(
            f"an API token lasts at most {settings.api_token_ttl_days} days",
            detail={"field": "days"},
        )
    async with session_scope(runtime.sessions) as session:
        stored = (await _own_account(session, actor.name)).password_hash
    try:
        ok = await passwords.verify_aside(stored, data.password)
    except passwords.Busy:
        raise TooManyAttempts("try again in a moment", retry_after_s=1) from None
    if not ok:
        raise Unauthenticated("the password is wrong", detail={"field": "password"})
    async with runtime.writing() as session:
        user = await _own_account(session, actor.name)
        raw, token = await service.issue_token(
            session,
            user,
            kind="api",
            name=data.name,
            lifetime=timedelta(days=data.days or settings.api_token_ttl_days),
            address=_address(request),
            now=now,
        )
        return TokenCreated(token=raw, name=token.name, expires_at=token.expires_at)


async def _own_account(session: AsyncSession, username: str) -> User:
    try:
        return await service.get(session, username)
    except service.UserNotFound:
        raise Unauthenticated("sign in with an account first") from None


@router.post(
    "/api/v1/auth/password",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[allow(Action.SELF, From.ANYWHERE)],
)
async def change_password(data: PasswordChange, runtime: RuntimeDep, actor: ActorDep) -> None:
    """Every session and token of the account ends: sign in again with the new one."""
    async with runtime.writing() as session:
        user = await _own_account(session, actor.name)
        await service.change_own_password(
            session,
            user,
            data.current,
            data.new,
            now=runtime.clock.now(),
            production=_prod(runtime),
        )


@router.post(
    "/api/v1/users",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.ACCOUNTS, From.PROVINCE)],
)
async def create_user(data: UserCreate, runtime: RuntimeDep, actor: ActorDep) -> UserRead:
    async with runtime.writing() as session:
        user = await service.create(
            session, data, by=actor.name, now=runtime.clock.now(), production=_prod(runtime)
        )
        return service.read(user)


@router.get("/api/v1/users", dependencies=[allow(Action.ACCOUNTS, From.PROVINCE)])
async def list_users(runtime: RuntimeDep, actor: ActorDep) -> list[UserRead]:
    async with session_scope(runtime.sessions) as session:
        return await service.listing(session)


@router.patch("/api/v1/users/{username}", dependencies=[allow(Action.ACCOUNTS, From.PROVINCE)])
async def change_user(
    username: str, data: UserUpdate, runtime: RuntimeDep, actor: ActorDep
) -> UserRead:
    """Role and area, a new password (its sessions end), unlock, (de)activate."""
    async with runtime.writing() as session:
        user = await service.change(
            session, username, data, now=runtime.clock.now(), production=_prod(runtime)
        )
        return service.read(user)
