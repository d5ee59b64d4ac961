"""Who may do what (docs/security.md): each role's actions, and the area rule.

The area rule: a person whose role is scoped to a node of the area tree (a commune, a
district) may read, target and change only what lies in that node's subtree; a role
scoped to nothing covers the whole province. Every endpoint declares its action and
where its areas come from (web/guard.py); this module is the table it is checked
against, so the whole policy reads in one screen.
"""

from __future__ import annotations

from enum import StrEnum

from core.actors import Actor, Role
from core.errors import Forbidden


class Action(StrEnum):
    READ = "read"  # areas, clusters, schedules, broadcasts, health: within the area
    SEND = "broadcast.send"  # normal and priority broadcasts (approved bulletins)
    SEND_EMERGENCY = "broadcast.emergency"  # played at once, over everything
    CANCEL = "broadcast.cancel"
    SCHEDULE = "schedule.write"
    MEDIA = "media.upload"  # recordings, speech, e-board images
    BULLETIN = "bulletin.write"  # the editorial workflow adds its own rules per step
    DISTRIBUTE = "bulletin.distribute"  # send a bulletin down to the communes (their inboxes)
    INBOX = "inbox.handle"  # air or decline what arrived in a commune's inbox
    OPERATE = "device.operate"  # remote commands, self-test, alarm acknowledgement
    FIRMWARE = "firmware.manage"
    REGISTRY = "registry.write"  # the area tree and the cluster register
    WARNINGS = "warning.manage"  # the standard warnings every cluster holds (issue 24)
    ACCOUNTS = "accounts.manage"
    AUDIT = "audit.read"
    SELF = "self"  # one's own session, password and tokens


_EVERYONE = frozenset({Action.READ, Action.SELF})
_OPERATOR = _EVERYONE | {Action.SEND, Action.CANCEL, Action.SCHEDULE, Action.MEDIA, Action.BULLETIN}
ALLOWED: dict[Role, frozenset[Action]] = {
    Role.COMMUNE_OPERATOR: _OPERATOR | {Action.INBOX},
    Role.DISTRICT_OPERATOR: _OPERATOR | {Action.DISTRIBUTE, Action.INBOX},
    # The duty officer alone (with the administrator) sends emergencies (issue 6): a
    # commune's own alarm for a fire goes as a priority broadcast.
    # The standard warnings are what emergencies air, so their library is the duty
    # officer's too (issue 24).
    Role.PROVINCE_OFFICER: _OPERATOR | {Action.SEND_EMERGENCY, Action.DISTRIBUTE, Action.WARNINGS},
    Role.EDITOR: _EVERYONE | {Action.MEDIA, Action.BULLETIN},
    Role.TECHNICIAN: _EVERYONE | {Action.OPERATE, Action.FIRMWARE},
    Role.ADMIN: frozenset(Action),
    Role.OBSERVER: _EVERYONE,
    # The system: schedules fire at the level they were saved with (never emergencies);
    # the gateway airs and withdraws what the national level sends.
    Role.SYSTEM: frozenset({Action.READ, Action.SEND, Action.OPERATE}),
    Role.GATEWAY: frozenset({Action.READ, Action.SEND, Action.SEND_EMERGENCY, Action.CANCEL}),
}


def require(actor: Actor, action: Action) -> None:
    if action not in ALLOWED[actor.role]:
        raise Forbidden(
            f"{actor.label} may not {_WORDS[action]}",
            detail={"missing": "role", "role": actor.role.value, "needs": action.value},
        )


def covers(actor: Actor, area_path: str) -> bool:
    """The area (its materialised path, "/70/688/25216/") lies in the actor's subtree."""
    return actor.area is None or f"/{actor.area}/" in area_path


_WORDS = {
    Action.READ: "read this",
    Action.SEND: "send broadcasts",
    Action.SEND_EMERGENCY: "send emergency broadcasts (the provincial duty officer does)",
    Action.CANCEL: "cancel broadcasts",
    Action.SCHEDULE: "change schedules",
    Action.MEDIA: "upload media",
    Action.BULLETIN: "write or review bulletins",
    Action.DISTRIBUTE: "send bulletins down to the communes",
    Action.INBOX: "decide on a commune's inbox (its operators do)",
    Action.OPERATE: "command devices",
    Action.FIRMWARE: "manage firmware",
    Action.REGISTRY: "change the area tree or the cluster register",
    Action.WARNINGS: "change the standard warnings (the duty officer does)",
    Action.ACCOUNTS: "manage accounts",
    Action.AUDIT: "read the audit log",
    Action.SELF: "do this",
}
