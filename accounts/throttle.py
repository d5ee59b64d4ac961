"""Slowing down password guessing without locking out the person whose account it is.

Two brakes, both before any password is hashed:
- per source address, in memory: a small budget of sign-ins a minute, whatever the
  names tried (an anonymous flood must not cost us argon2 work, issue 19);
- per (account name, source address), in the database: after a few wrong passwords the
  next attempts from that address wait, longer each time, and at the limit that address
  is held off the account for the lock-out time. The account itself is never locked: the
  duty officer signs in from the duty room while someone hammers the name from outside.

An unknown name is treated exactly like a known one, so the answers never tell which
names have accounts.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from core.errors import AppError
from core.settings import Settings

ADDRESSES_KEPT = 10_000  # budgets remembered; the oldest are forgotten (memory is bounded)


class TooManyAttempts(AppError):
    status_code = 429

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        seconds = max(1, round(retry_after_s))
        super().__init__(message, detail={"retry_after_s": seconds})
        self.headers = {"Retry-After": str(seconds)}


class AddressBudget:
    """A token bucket per source address: `burst` attempts at once, refilled at `per_s`."""

    def __init__(self, per_s: float, burst: int) -> None:
        self.per_s, self.burst = per_s, burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, address: str, now: float) -> float:
        """0 if an attempt may go ahead (and is counted); else the seconds to wait. `now`
        in seconds, from the runtime's clock (tests move it)."""
        tokens, at = self._buckets.pop(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_s)
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            return (1 - tokens) / self.per_s
        self._buckets[address] = (tokens - 1, now)
        while len(self._buckets) > ADDRESSES_KEPT:
            self._buckets.popitem(last=False)
        return 0.0


def hold_after(failures: int, settings: Settings) -> timedelta | None:
    """How long an address waits after its `failures`-th wrong password in a row for one
    name: nothing for the first few (typing mistakes), then doubling, and the lock-out
    time at the limit."""
    if failures >= settings.login_max_failures:
        return timedelta(seconds=settings.login_lockout_s)
    beyond = failures - settings.login_free_failures
    if beyond <= 0:
        return None
    return timedelta(seconds=settings.login_delay_base_s * 2 ** (beyond - 1))


def held(until: datetime, now: datetime) -> TooManyAttempts:
    return TooManyAttempts(
        "too many wrong passwords for this name from this address: wait, or sign in from "
        "another place; an administrator can lift it",
        retry_after_s=(until - now).total_seconds(),
    )
