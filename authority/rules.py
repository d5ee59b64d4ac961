"""Who may put sound on air, stop it or change it: the rules, pure (docs/security.md).

Every path that airs, stops or changes what the loudspeakers play (the broadcast API, a
bulletin sent down to the communes, an inbox item accepted, a schedule saved or firing,
CAP and the central inbox, a remote operation, a firmware rollout) asks `decide` with
the deed, the class and the level, and `inside` with the areas it touches. The services
that write broadcasts, schedules, operations and rollouts ask it themselves
(authority/checks.py), so a new route cannot forget it.

Three rules beyond what a role may do (core/policy.py):
- the class picks the right: an emergency needs the emergency right whatever the route,
  and so does stopping one (the commune cannot block an emergency, Circular 39/2020);
- the sender's level is the server's word, from the role: a person may ask for a lower
  level, never a higher one (clusters order their queue by class, then level);
- stopping or changing needs the subject's level or a higher one: a commune stops its
  own items, not the province's; the duty officer (and the administrator) stops anyone's.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from core.actors import Actor, Role
from core.errors import Forbidden, InvalidInput
from core.policy import ALLOWED, Action, covers
from wire.protocol import LEVEL_RANK, CommandClass, SenderLevel


class Deed(StrEnum):
    """What a request does to the sound on the air."""

    SEND = "send"  # on air now: any route that creates a broadcast
    SCHEDULE = "schedule"  # on air later: a schedule saved
    STOP = "stop"  # a broadcast cancelled
    CHANGE = "change"  # a schedule edited, ended, paused or a play skipped
    OPERATE = "operate"  # a remote operation (a test tone sounds; volume, amplifier change it)
    ROLLOUT = "rollout"  # firmware onto the clusters; a rollout paused, resumed, cancelled


C = CommandClass
# The right each deed needs, by class (None: deeds without one).
RIGHTS: dict[tuple[Deed, CommandClass | None], Action] = {
    (Deed.SEND, C.EMERGENCY): Action.SEND_EMERGENCY,
    (Deed.SEND, C.PRIORITY): Action.SEND,
    (Deed.SEND, C.NORMAL): Action.SEND,
    (Deed.SCHEDULE, C.PRIORITY): Action.SCHEDULE,
    (Deed.SCHEDULE, C.NORMAL): Action.SCHEDULE,
    (Deed.STOP, C.EMERGENCY): Action.SEND_EMERGENCY,
    (Deed.STOP, C.PRIORITY): Action.CANCEL,
    (Deed.STOP, C.NORMAL): Action.CANCEL,
    (Deed.CHANGE, C.PRIORITY): Action.SCHEDULE,
    (Deed.CHANGE, C.NORMAL): Action.SCHEDULE,
    (Deed.OPERATE, None): Action.OPERATE,
    (Deed.ROLLOUT, None): Action.FIRMWARE,
}
# Deeds that carry a level: the one asked for (send, schedule) or the subject's (stop,
# change). Operations and rollouts are not items in a cluster's queue.
LEVELLED = frozenset({Deed.SEND, Deed.SCHEDULE, Deed.STOP, Deed.CHANGE})

# The level a role sends at. Roles not named send at the province's level (they are
# provincial staff; most of them have no right to send at all).
OWN_LEVEL: dict[Role, SenderLevel] = {
    Role.COMMUNE_OPERATOR: SenderLevel.COMMUNE,
    Role.DISTRICT_OPERATOR: SenderLevel.DISTRICT,
    Role.GATEWAY: SenderLevel.CENTRAL,  # CAP and the central inbox: the national level
}
# Who stops and changes anyone's broadcasts and schedules, whatever their level.
OVER_EVERY_LEVEL = frozenset({Role.PROVINCE_OFFICER, Role.ADMIN})


class Refused(Forbidden):
    """403 naming what is missing: `role` (the right), `area` or `level`."""

    def __init__(self, message: str, missing: str, **detail: object) -> None:
        super().__init__(message, detail={"missing": missing, **detail})


def own_level(actor: Actor) -> SenderLevel:
    return OWN_LEVEL.get(actor.role, SenderLevel.PROVINCE)


def right_for(deed: Deed, cls: CommandClass | None) -> Action:
    key = (deed, cls if (deed, cls) in RIGHTS else None)
    if key not in RIGHTS:
        raise InvalidInput(
            f"a {cls.value if cls else 'classless'} item cannot be {_PAST[deed]}",
            detail={"field": "class"},
        )
    return RIGHTS[key]


def decide(
    actor: Actor, deed: Deed, *, cls: CommandClass | None = None, level: SenderLevel | None = None
) -> SenderLevel:
    """The level the deed is done at (sending, scheduling: the one asked for, else one's
    own); raises Refused naming the missing right or level. `level` is, for stopping and
    changing, the level of the broadcast or schedule concerned."""
    right = right_for(deed, cls)
    if right not in ALLOWED[actor.role]:
        what = f"{cls.value} " if cls else ""
        # The emergency right is the class's: the request's `class` is what to change.
        named = {"field": "class"} if cls is CommandClass.EMERGENCY else {}
        raise Refused(
            f"{actor.label} may not {_VERB[deed]} {what}{_OBJECT[deed]}".rstrip(),
            "role",
            role=actor.role.value,
            needs=right.value,
            **named,
        )
    mine = own_level(actor)
    if deed not in LEVELLED:
        return mine
    if deed in (Deed.SEND, Deed.SCHEDULE):
        if level is not None and LEVEL_RANK[level] > LEVEL_RANK[mine]:
            raise Refused(
                f"{actor.label} sends at the {mine.value} level, not {level.value}",
                "level",
                field="level",
                level=level.value,
                yours=mine.value,
            )
        return level or mine
    subject = level or SenderLevel.CENTRAL  # unknown: the highest, so only the top may
    if actor.role not in OVER_EVERY_LEVEL and LEVEL_RANK[subject] > LEVEL_RANK[mine]:
        raise Refused(
            f"{actor.label} may not {_VERB[deed]} what the {subject.value} level sent",
            "level",
            level=subject.value,
            yours=mine.value,
        )
    return mine


def inside(actor: Actor, touched: Iterable[tuple[str, str, str]]) -> None:
    """Every (kind, code, area path) touched lies in the actor's area; else Refused."""
    for kind, code, path in touched:
        if not covers(actor, path):
            raise Refused(
                f"{actor.label} works in area {actor.area}; {kind} {code} is outside it",
                "area",
                **{kind: code, "yours": actor.area},
            )


_VERB = {
    Deed.SEND: "send",
    Deed.SCHEDULE: "schedule",
    Deed.STOP: "stop",
    Deed.CHANGE: "change",
    Deed.OPERATE: "command",
    Deed.ROLLOUT: "roll out firmware to",
}
_OBJECT = {
    Deed.SEND: "broadcasts",
    Deed.SCHEDULE: "broadcasts",
    Deed.STOP: "broadcasts",
    Deed.CHANGE: "schedules",
    Deed.OPERATE: "clusters",
    Deed.ROLLOUT: "clusters",
}
_PAST = {
    Deed.SEND: "sent",
    Deed.SCHEDULE: "scheduled (emergencies are sent, not scheduled)",
    Deed.STOP: "stopped",
    Deed.CHANGE: "changed",
    Deed.OPERATE: "operated",
    Deed.ROLLOUT: "rolled out",
}
