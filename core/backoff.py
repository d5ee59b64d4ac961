"""How long an unanswered command waits before it is sent again: one schedule for the
deliveries of a broadcast and the results of a device operation alike."""

from __future__ import annotations

from core.settings import Settings

# 2**60 times any base reaches any cap; past 1,024 doublings the float would overflow
# (OverflowError), which a command re-sent every 30 s reaches in eight and a half hours.
_MAX_DOUBLINGS = 60


def resend_delay_s(attempts: int, settings: Settings) -> float:
    """Exponential backoff after the latest of `attempts` sends: base, 2*base, 4*base ...
    capped at `resend_cap_s`."""
    doublings = min(_MAX_DOUBLINGS, max(0, attempts - 1))
    return float(min(settings.resend_cap_s, settings.resend_base_s * 2**doublings))
