"""Who is acting: a person's name, role and the area node their role is scoped to.

Until the security work (issue 6) adds accounts and sessions, identity comes from a
trusted front proxy that authenticates people and sets `X-Actor`, `X-Role` and `X-Area`
(the same pattern as nginx `auth_request` or an SSO gateway). In development and tests a
request without them acts as the built-in administrator; in production it is refused.
Everything downstream (workflow rules, the record of who did what) takes an Actor, so
replacing the source of identity touches this module only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import InvalidInput, Unauthenticated


class Role(StrEnum):
    COMMUNE_OPERATOR = "commune_operator"
    DISTRICT_OPERATOR = "district_operator"
    PROVINCE_OFFICER = "province_officer"  # the duty officer: may send emergencies
    EDITOR = "editor"  # the editorial board: approves or rejects bulletins
    TECHNICIAN = "technician"
    ADMIN = "admin"
    OBSERVER = "observer"  # read-only (the central reporting system)
    # Not people: the system acting on its own, never an account's role.
    SYSTEM = "system"  # its own jobs: schedules firing at their level, the daily self-test
    GATEWAY = "gateway"  # CAP and the central inbox: what the national level sends


PEOPLE = frozenset(Role) - {Role.SYSTEM, Role.GATEWAY}


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role
    area: str | None = None  # the area code the role is scoped to; None = whole province

    @property
    def label(self) -> str:
        return f"{self.name} ({self.role.value})"


DEVELOPMENT_ACTOR = Actor("admin", Role.ADMIN)
SCHEDULER_ACTOR = Actor("scheduler", Role.SYSTEM)


def from_headers(
    name: str | None, role: str | None, area: str | None, *, production: bool
) -> Actor:
    if not name:
        if production:
            raise Unauthenticated("sign-in required (X-Actor missing)")
        return DEVELOPMENT_ACTOR
    try:
        parsed = Role(role or "")
        if parsed not in PEOPLE:
            raise ValueError(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role if r in PEOPLE)
        raise InvalidInput(
            f"unknown role {role!r}; one of {roles}", detail={"field": "header.x-role"}
        ) from None
    return Actor(name[:100], parsed, area or None)
