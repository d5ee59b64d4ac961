"""Password hashing (argon2id) and the password rules.

The rules follow NIST SP 800-63B rather than composition rules: long enough, not the
user's own name, not a password everyone tries first. Composition rules ("one capital,
one digit") make people write passwords on the wall of the district office.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import InvalidInput

# The demo's accounts' password, printed in the README: never a production password.
DEMO_PASSWORD = "diễn tập phòng chống lụt bão"
MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 takes any length; a megabyte "password" is an attack
COMMON = frozenset(
    {
        "1234567890",
        "12345678910",
        "0123456789",
        "1111111111",
        "0000000000",
        "qwertyuiop",
        "password123",
        "password1234",
        "matkhau123",
        "matkhau1234",
        "abc1234567",
        "123456789a",
        "admin12345",
        "administrator",
        "iloveyou123",
        "vietnam123",
        "vietnam1234",
        "hanoi12345",
        "saigon1234",
        "loaphuong123",
        "truyenthanh",
        "truyenthanh123",
    }
)

# Default parameters of argon2-cffi (RFC 9106's second recommended option: argon2id,
# 64 MiB, 3 passes): about 50 ms a hash here, a cost an attacker pays per guess.
_hasher = PasswordHasher()
# What an unknown user name is checked against, so that a wrong name takes as long as a
# wrong password and does not tell who has an account.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


def check_rules(password: str, *, username: str, production: bool = False) -> None:
    if production and password == DEMO_PASSWORD:
        raise InvalidInput(
            "this password is printed in the README (the demo's): choose another",
            detail={"field": "password"},
        )
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"password must be at least {MIN_LENGTH} characters", detail={"field": "password"}
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(
            f"password must be at most {MAX_LENGTH} characters", detail={"field": "password"}
        )
    lowered = password.lower()
    if username and username.lower() in lowered:
        raise InvalidInput("password must not contain the user name", detail={"field": "password"})
    if lowered in COMMON or len(set(lowered)) < 4:
        raise InvalidInput(
            "password is too easy to guess; a short sentence is easier to remember",
            detail={"field": "password"},
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# Passwords are checked one at a time, in one thread of lowered priority, and only a few
# may wait: a flood of sign-ins from many addresses then uses at most one core, never the
# event loop's, and is told to come back rather than queued for minutes. Measured with 16
# addresses flooding: the emergency request's median went from 1.05 s (the default pool,
# six hashes at once on two cores) to the figure in docs/benchmarks.md.
HASHES_WAITING_MAX = 4


def _lower_priority() -> None:
    try:  # Linux: a thread's own nice value; sending and acks come first
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (OSError, AttributeError):
        pass


_checker = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="argon2", initializer=_lower_priority
)
_waiting = 0


class Busy(Exception):
    """Too many password checks waiting: answer "try again in a moment"."""


async def verify_aside(password_hash: str | None, password: str) -> bool:
    """`verify`, off the event loop and one at a time; Busy if too many already wait."""
    global _waiting
    if _waiting >= HASHES_WAITING_MAX:
        raise Busy
    _waiting += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _checker, verify, password_hash, password
        )
    finally:
        _waiting -= 1
