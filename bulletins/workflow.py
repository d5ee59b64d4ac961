"""Editorial workflow: who may move a bulletin from which state to which. Pure rules.

    draft --submit--> submitted --approve--> approved --archive--> archived
      ^                  |  \\--reject(reason)--> rejected --revise--> draft
      \\----withdraw------/

The editorial board approves what anyone else wrote (never its own work: four eyes). An
emergency goes on air at once; its bulletin waits in `submitted`, marked as aired before
review, and the board approves or rejects it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.actors import Actor, Role
from core.errors import Conflict, Forbidden, InvalidInput


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    ARCHIVED = "archived"


class InboxStatus(StrEnum):
    """A bulletin sent down to an area's inbox (InboxItem.status)."""

    PENDING = "pending"  # a normal bulletin, waiting for the area to decide
    ACCEPTED = "accepted"
    DECLINED = "declined"
    AIRED = "aired"  # priority and emergency go on air at once
    WITHDRAWN = "withdrawn"  # its issuer cancelled or replaced it while it waited


class Action(StrEnum):
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    APPROVE = "approve"
    REJECT = "reject"
    REVISE = "revise"
    ARCHIVE = "archive"


AUTHORS = frozenset(
    {
        Role.COMMUNE_OPERATOR,
        Role.DISTRICT_OPERATOR,
        Role.PROVINCE_OFFICER,
        Role.EDITOR,
        Role.ADMIN,
        Role.GATEWAY,  # a national agency's alert, kept as a bulletin approved by its issuer
    }
)
REVIEWERS = frozenset({Role.EDITOR, Role.ADMIN})


@dataclass(frozen=True)
class Rule:
    sources: frozenset[Status]
    target: Status
    author_may: bool  # the bulletin's author may do it
    reviewers_may: bool  # the editorial board (and administrators) may do it
    author_may_not: bool = False  # four eyes: even a reviewer may not, on their own work


S = Status
RULES: dict[Action, Rule] = {
    Action.SUBMIT: Rule(frozenset({S.DRAFT}), S.SUBMITTED, author_may=True, reviewers_may=False),
    Action.WITHDRAW: Rule(frozenset({S.SUBMITTED}), S.DRAFT, author_may=True, reviewers_may=False),
    Action.APPROVE: Rule(
        frozenset({S.SUBMITTED}), S.APPROVED, False, reviewers_may=True, author_may_not=True
    ),
    Action.REJECT: Rule(
        frozenset({S.SUBMITTED}), S.REJECTED, False, reviewers_may=True, author_may_not=True
    ),
    Action.REVISE: Rule(frozenset({S.REJECTED}), S.DRAFT, author_may=True, reviewers_may=False),
    Action.ARCHIVE: Rule(
        frozenset({S.DRAFT, S.APPROVED, S.REJECTED}), S.ARCHIVED, True, reviewers_may=True
    ),
}


def may_author(actor: Actor) -> bool:
    return actor.role in AUTHORS


def within(actor: Actor, area_path: str) -> bool:
    """Whether the actor's scope covers an area (its path of codes from the root)."""
    return actor.area is None or actor.area in area_path.split("/")


def decide(
    action: Action,
    *,
    status: Status,
    actor: Actor,
    author: str,
    area_path: str,
    note: str | None,
) -> Status:
    """The new status, or the reason it is refused (Conflict, Forbidden, InvalidInput)."""
    rule = RULES[action]
    if status not in rule.sources:
        allowed = ", ".join(sorted(s.value for s in rule.sources))
        raise Conflict(
            f"cannot {action.value} a bulletin that is {status.value} (only from {allowed})",
            detail={"status": status.value, "action": action.value},
        )
    is_author = actor.name == author
    is_reviewer = actor.role in REVIEWERS
    if rule.author_may_not and is_author:
        raise Forbidden(
            f"{actor.name} wrote this bulletin; another member of the editorial board must "
            f"{action.value} it",
            detail={"missing": "author", "action": action.value},
        )
    allowed_here = (rule.author_may and is_author) or (rule.reviewers_may and is_reviewer)
    if actor.role is Role.ADMIN and not rule.author_may_not:
        allowed_here = True  # administrators can unblock anything but a review of their own
    if not allowed_here or not within(actor, area_path):
        raise Forbidden(
            f"{actor.label} may not {action.value} this bulletin",
            detail={"missing": "role", "action": action.value, "role": actor.role.value},
        )
    if action is Action.REJECT and not (note or "").strip():
        raise InvalidInput("a rejection needs a reason", detail={"field": "note"})
    return rule.target
