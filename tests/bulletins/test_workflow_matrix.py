"""The approval matrix: every action, from every state, by every kind of person."""

from __future__ import annotations

import itertools

import pytest

from bulletins.workflow import Action, Status, decide
from core.actors import Actor, Role
from core.errors import Conflict, Forbidden, InvalidInput

AUTHOR = "tac.gia"
PATH = "70/689/25195"

# Who is acting, relative to the bulletin: (name, role, area scope).
PEOPLE = {
    "author (commune operator)": Actor(AUTHOR, Role.COMMUNE_OPERATOR, "25195"),
    "author (editor)": Actor(AUTHOR, Role.EDITOR),
    "author (admin)": Actor(AUTHOR, Role.ADMIN),
    "another operator": Actor("dong.nghiep", Role.COMMUNE_OPERATOR, "25195"),
    "editor": Actor("bien.tap", Role.EDITOR),
    "editor of another district": Actor("bien.tap.2", Role.EDITOR, "690"),
    "admin": Actor("quan.tri", Role.ADMIN),
    "duty officer": Actor("truc.ban", Role.PROVINCE_OFFICER),
    "technician": Actor("ky.thuat", Role.TECHNICIAN),
    "observer": Actor("trung.uong", Role.OBSERVER),
}

# The specification, written out by hand: who may take each action, from which states.
AUTHORS = {"author (commune operator)", "author (editor)", "author (admin)"}
REVIEWERS_NOT_AUTHOR = {"editor", "admin"}
ALLOWED: dict[Action, tuple[set[Status], set[str]]] = {
    Action.SUBMIT: ({Status.DRAFT}, AUTHORS | {"admin"}),
    Action.WITHDRAW: ({Status.SUBMITTED}, AUTHORS | {"admin"}),
    Action.APPROVE: ({Status.SUBMITTED}, REVIEWERS_NOT_AUTHOR),
    Action.REJECT: ({Status.SUBMITTED}, REVIEWERS_NOT_AUTHOR),
    Action.REVISE: ({Status.REJECTED}, AUTHORS | {"admin"}),
    Action.ARCHIVE: (
        {Status.DRAFT, Status.APPROVED, Status.REJECTED},
        AUTHORS | {"editor", "admin"},
    ),
}
TARGET = {
    Action.SUBMIT: Status.SUBMITTED,
    Action.WITHDRAW: Status.DRAFT,
    Action.APPROVE: Status.APPROVED,
    Action.REJECT: Status.REJECTED,
    Action.REVISE: Status.DRAFT,
    Action.ARCHIVE: Status.ARCHIVED,
}


@pytest.mark.parametrize(
    ("action", "status", "who"), list(itertools.product(Action, Status, PEOPLE))
)
def test_matrix(action: Action, status: Status, who: str) -> None:
    sources, people = ALLOWED[action]

    def attempt() -> Status:
        return decide(
            action, status=status, actor=PEOPLE[who], author=AUTHOR, area_path=PATH, note="lý do"
        )

    if status not in sources:
        with pytest.raises(Conflict):
            attempt()
    elif who in people:
        assert attempt() is TARGET[action]
    else:
        with pytest.raises(Forbidden):
            attempt()


def test_a_rejection_must_say_why() -> None:
    with pytest.raises(InvalidInput) as refused:
        decide(
            Action.REJECT,
            status=Status.SUBMITTED,
            actor=PEOPLE["editor"],
            author=AUTHOR,
            area_path=PATH,
            note="  ",
        )
    assert refused.value.detail == {"field": "note"}
