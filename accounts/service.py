"""Accounts: create and change them, sign in with lock-out, sessions and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import passwords, throttle
from accounts.models import AuthToken, SignInFailure, User
from accounts.schemas import UserCreate, UserRead, UserUpdate
from areas import service as area_service
from core.actors import Actor, Role
from core.errors import AppError, Conflict, NotFound, Unauthenticated
from core.settings import Settings

TOKEN_PREFIX = "bc_"  # recognisable in a leaked file or a log, so it can be revoked
TOUCH_EVERY = timedelta(minutes=1)  # last-used is written at most this often per token
WRONG = "wrong user name or password"  # never says which of the two


class UserNotFound(NotFound):
    def __init__(self, username: str) -> None:
        super().__init__(f"user {username!r} not found", detail={"user": username})


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def actor_of(user: User) -> Actor:
    return Actor(user.username, Role(user.role), user.area_code)


def read(user: User) -> UserRead:
    return UserRead.model_validate(user, from_attributes=True)


async def get(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserNotFound(username)
    return user


async def create(
    session: AsyncSession, data: UserCreate, *, by: str, now: datetime, production: bool = False
) -> User:
    if await session.scalar(select(User.id).where(User.username == data.username)) is not None:
        raise Conflict(f"user {data.username!r} already exists", detail={"field": "username"})
    if data.area:
        await area_service.get(session=session, code=data.area)  # 404 naming it
    passwords.check_rules(data.password, username=data.username, production=production)
    user = User(
        username=data.username,
        full_name=data.full_name,
        password_hash=passwords.hash_password(data.password),
        role=data.role.value,
        area_code=data.area,
        active=True,
        password_changed_at=now,
        created_by=by,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def change(
    session: AsyncSession,
    username: str,
    data: UserUpdate,
    *,
    now: datetime,
    production: bool = False,
) -> User:
    """An administrator's changes: role and area, a new password, unlock, (de)activate.
    A deactivated account's sessions and tokens stop working at once."""
    user = await get(session, username)
    if data.role is not None:
        user.role = data.role.value
    if "area" in data.model_fields_set:
        if data.area:
            await area_service.get(session=session, code=data.area)
        user.area_code = data.area
    if data.password is not None:
        passwords.check_rules(data.password, username=user.username, production=production)
        user.password_hash = passwords.hash_password(data.password)
        user.password_changed_at = now
        await _revoke_all(session, user, now)
    if data.unlock:
        await session.execute(delete(SignInFailure).where(SignInFailure.username == username))
    if data.active is not None:
        user.active = data.active
        if not data.active:
            await _revoke_all(session, user, now)
    return user


async def _revoke_all(session: AsyncSession, user: User, now: datetime) -> None:
    await session.execute(
        update(AuthToken)
        .where(AuthToken.user_id == user.id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: the user, or why not. Returned, not raised, so
    that a failure's count is committed before the error is answered."""

    user: User | None
    error: AppError | None
    alarm: int = 0  # the wrong passwords in a row that reached the limit, else 0


async def sign_in_state(
    session: AsyncSession, username: str, address: str, *, now: datetime
) -> tuple[User | None, AppError | None]:
    """The account (None: no such name) and, if this address is held off the name, the
    answer to give without checking the password."""
    user = await session.scalar(select(User).where(User.username == username))
    held_until = await session.scalar(
        select(SignInFailure.held_until).where(
            SignInFailure.username == username, SignInFailure.address == address[:64]
        )
    )
    if held_until is not None and held_until > now:
        return user, throttle.held(held_until, now)
    return user, None


async def settle_sign_in(
    session: AsyncSession,
    username: str,
    address: str,
    *,
    password_ok: bool,
    settings: Settings,
    now: datetime,
    password_for_rehash: str | None = None,
) -> SignIn:
    """Record the attempt, its password already checked (outside any lock): a failure
    counts against this name from this address only; a success clears that count."""
    user = await session.scalar(select(User).where(User.username == username))
    row = await session.scalar(
        select(SignInFailure).where(
            SignInFailure.username == username, SignInFailure.address == address[:64]
        )
    )
    if user is None or not password_ok:
        if row is None:
            row = SignInFailure(username=username, address=address[:64], failures=0)
            session.add(row)
        row.failures += 1
        row.last_failed_at = now
        hold = throttle.hold_after(row.failures, settings)
        row.held_until = now + hold if hold else None
        alarm = row.failures if row.failures == settings.login_max_failures else 0
        return SignIn(None, Unauthenticated(WRONG), alarm)
    if not user.active:  # said only to whoever knows its password
        return SignIn(None, Unauthenticated("this account is deactivated"))
    production = settings.environment == "production"
    if production and password_for_rehash == passwords.DEMO_PASSWORD:
        return SignIn(
            None,
            Unauthenticated(
                "this account has the demo's password, printed in the README: an "
                "administrator must set a new one"
            ),
        )
    if row is not None:
        await session.delete(row)
    if passwords.needs_rehash(user.password_hash):  # rare: the hashing parameters changed
        user.password_hash = passwords.hash_password(password_for_rehash or "")
    return SignIn(user, None)


async def issue_token(
    session: AsyncSession,
    user: User,
    *,
    kind: str,
    name: str,
    lifetime: timedelta,
    address: str,
    now: datetime,
) -> tuple[str, AuthToken]:
    """A new random token (returned once, never stored) and its record."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AuthToken(
        user_id=user.id,
        token_sha256=token_digest(raw),
        kind=kind,
        name=name,
        created_at=now,
        expires_at=now + lifetime,
        created_from=address[:64],
    )
    session.add(token)
    await session.flush()
    return raw, token


async def resolve_token(
    session: AsyncSession, raw: str, *, now: datetime
) -> tuple[User, AuthToken] | None:
    """The active user a live token belongs to, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    found = (
        await session.execute(
            select(User, AuthToken)
            .join(AuthToken, AuthToken.user_id == User.id)
            .where(AuthToken.token_sha256 == token_digest(raw))
        )
    ).first()
    if found is None:
        return None
    user, token = found
    if token.revoked_at is not None or token.expires_at <= now or not user.active:
        return None
    return user, token


def touch_due(token: AuthToken, now: datetime) -> bool:
    """Whether the token's last use is to be written now (at most once a TOUCH_EVERY)."""
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY


async def touch(session: AsyncSession, token_id: int, *, now: datetime) -> None:
    await session.execute(
        update(AuthToken)
        .where(AuthToken.id == token_id)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


async def revoke(session: AsyncSession, raw: str, *, now: datetime) -> bool:
    result = await session.execute(
        update(AuthToken)
        .where(AuthToken.token_sha256 == token_digest(raw), AuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def change_own_password(
    session: AsyncSession,
    user: User,
    current: str,
    new: str,
    *,
    now: datetime,
    production: bool = False,
) -> None:
    if not passwords.verify(user.password_hash, current):
        raise Unauthenticated("the current password is wrong", detail={"field": "current"})
    passwords.check_rules(new, username=user.username, production=production)
    user.password_hash = passwords.hash_password(new)
    user.password_changed_at = now
    await _revoke_all(session, user, now)


async def listing(session: AsyncSession) -> list[UserRead]:
    rows = await session.scalars(select(User).order_by(User.username))
    return [read(u) for u in rows.all()]
