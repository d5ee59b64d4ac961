"""Receiving CAP: every message kept with what became of it (docs/cap.md).

A message is read safely against the schema, its signature checked, and its alert read;
a copy of one already acted on is recognised; what is not for the public, nothing to air,
or too old or from the future is recorded as such. What an accepted alert becomes (its
broadcast or inbox offers, what an Update or Cancel undoes) is cap/airing.py. Whatever
happens, the message is stored, with its outcome and the reason.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from broadcast.context import Sending
from cap import airing, signature
from cap.message import Alert, CapStatus, MsgType, read
from cap.models import CapMessage, CapOutcome
from cap.parsing import CapRefused, as_text, parse
from core.database import session_scope
from core.errors import AppError
from core.settings import Settings

log = logging.getLogger("cap")

MAX_RAW_CHARS = 1_000_000
NOT_FOR_THE_PUBLIC = {CapStatus.DRAFT, CapStatus.SYSTEM}
DRILLS = {CapStatus.EXERCISE, CapStatus.TEST}


@dataclass
class Outcome:
    message: CapMessage
    duplicate: bool = False
    notes: list[str] = field(default_factory=list)
    refused_field: str | None = None  # what a refusal names ("signature"), else the body


async def receive(runtime: Sending, raw: bytes, *, source: str) -> Outcome:
    """Read, check and act on one CAP message; it is stored whatever happens."""
    message = CapMessage(
        id=str(uuid.uuid4()),
        source=source[:500],
        received_at=runtime.clock.now(),
        raw=as_text(raw)[:MAX_RAW_CHARS],
        outcome=CapOutcome.REJECTED,
    )
    try:
        root = parse(raw, schema=runtime.settings.cap_schema)
        if signature.is_signed(root):
            signature.verify(root, runtime.settings.cap_trusted_certs)
        elif runtime.settings.cap_require_signature:
            raise CapRefused("unsigned: this system requires alerts signed (XML-DSig)")
        try:
            alert = read(root)
        except ValueError as exc:  # a polygon or circle that is not numbers
            raise CapRefused(f"an area is not readable: {exc}") from None
    except CapRefused as refused:
        message.reason = refused.reason
        log.warning("CAP message from %s rejected: %s", source, refused.reason)
        await airing.store(runtime, message)
        return Outcome(message, refused_field=refused.field)
    return await receive_alert(runtime, alert, message)


async def receive_alert(runtime: Sending, alert: Alert, message: CapMessage) -> Outcome:
    """Act on an alert already read (from CAP XML, or the central level's JSON form),
    once: `message` is its record, holding what arrived."""
    message.sender, message.identifier = alert.sender[:300], alert.identifier[:300]
    message.sent, message.status, message.msg_type = alert.sent_text, alert.status, alert.msg_type
    message.drill = alert.status in DRILLS
    earlier = await _already_received(runtime, message)
    if earlier is not None:
        return Outcome(earlier, duplicate=True)
    try:
        await _act(runtime, alert, message)
    except AppError as refused:  # e.g. a text the voice cannot read, an unknown area
        message.outcome, message.reason = CapOutcome.REJECTED, refused.message
        await airing.store(runtime, message)
    except Exception:
        # Every message is kept, whatever happened to it (docs/cap.md): a fault here is
        # logged and answered 500, and the message is on the review list all the same.
        log.exception("CAP message %s from %s: internal error", alert.identifier, alert.sender)
        message.outcome, message.reason = (
            CapOutcome.REJECTED,
            "internal error while acting on it (logged)",
        )
        message.broadcast_id = message.bulletin_id = None
        await airing.store(runtime, message)
        raise
    return Outcome(message)


async def _already_received(runtime: Sending, message: CapMessage) -> CapMessage | None:
    """The same message (sender, identifier, sent) acted on before: a feed read again,
    an upstream retry. Refused copies do not count: a corrected resend is welcome."""
    async with session_scope(runtime.sessions) as session:
        found: CapMessage | None = await session.scalar(
            select(CapMessage).where(
                CapMessage.sender == message.sender,
                CapMessage.identifier == message.identifier,
                CapMessage.sent == message.sent,
                CapMessage.outcome != CapOutcome.REJECTED,
            )
        )
        return found


async def _act(runtime: Sending, alert: Alert, message: CapMessage) -> None:
    if alert.status in NOT_FOR_THE_PUBLIC:
        return await airing.ignore(runtime, message, f"status {alert.status}: not for the public")
    if alert.msg_type in (MsgType.ACK, MsgType.ERROR):
        return await airing.ignore(runtime, message, f"msgType {alert.msg_type}: nothing to air")
    stale = _stale(alert, runtime.clock.now(), runtime.settings)
    if stale is not None:
        raise CapRefused(stale)
    await airing.act_on(runtime, alert, message)


def _stale(alert: Alert, now: datetime, settings: Settings) -> str | None:
    """Why an alert is too old or from the future to act on, or None. A genuine signed
    alert captured long ago and sent again must not air: its `sent` is part of what the
    signature covers, so it cannot be freshened."""
    age = (now - alert.sent).total_seconds()
    if age > settings.cap_max_age_s:
        return f"sent {alert.sent_text}: older than {settings.cap_max_age_s / 3600:g} h"
    if -age > settings.cap_max_ahead_s:
        return f"sent {alert.sent_text}: in the future by more than {settings.cap_max_ahead_s:g} s"
    return None
