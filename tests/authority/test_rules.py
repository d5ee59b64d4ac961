"""The authority rules as docs/security.md states them, row by row: the spec the policy
table must meet (the route matrix in tests/security/test_authority_matrix.py then checks
every route against the policy)."""

from __future__ import annotations

import pytest

from authority.rules import RIGHTS, Deed, Refused, decide, inside, own_level
from core.actors import PEOPLE, Actor, Role
from core.errors import InvalidInput
from core.policy import ALLOWED
from wire.protocol import CommandClass, SenderLevel

E, P, N = CommandClass.EMERGENCY, CommandClass.PRIORITY, CommandClass.NORMAL
COMMUNE, DISTRICT, PROVINCE, CENTRAL = (
    SenderLevel.COMMUNE,
    SenderLevel.DISTRICT,
    SenderLevel.PROVINCE,
    SenderLevel.CENTRAL,
)
R = Role
OK = "ok"

# (role, deed, class, level asked for or the subject's) -> the level it is done at, or
# what is missing. Written out from docs/security.md, not derived from the table.
SPEC: list[tuple[Role, Deed, CommandClass | None, SenderLevel | None, str]] = [
    # Emergencies: the duty officer and the administrator, whatever the route.
    (R.PROVINCE_OFFICER, Deed.SEND, E, None, "province"),
    (R.ADMIN, Deed.SEND, E, None, "province"),
    (R.DISTRICT_OPERATOR, Deed.SEND, E, None, "role"),  # finding 1
    (R.COMMUNE_OPERATOR, Deed.SEND, E, None, "role"),
    (R.EDITOR, Deed.SEND, E, None, "role"),
    (R.TECHNICIAN, Deed.SEND, E, None, "role"),
    (R.OBSERVER, Deed.SEND, E, None, "role"),
    (R.SYSTEM, Deed.SEND, E, None, "role"),  # schedules never carry emergencies
    (R.GATEWAY, Deed.SEND, E, CENTRAL, "central"),
    # Priority and normal: the operators and above.
    (R.COMMUNE_OPERATOR, Deed.SEND, P, None, "commune"),
    (R.DISTRICT_OPERATOR, Deed.SEND, N, None, "district"),
    (R.EDITOR, Deed.SEND, N, None, "role"),
    (R.TECHNICIAN, Deed.SEND, P, None, "role"),
    (R.SYSTEM, Deed.SEND, N, COMMUNE, "commune"),  # a commune's schedule firing
    # The level: the server's word; lower may be asked for, never higher (finding 3).
    (R.COMMUNE_OPERATOR, Deed.SEND, N, PROVINCE, "level"),
    (R.COMMUNE_OPERATOR, Deed.SEND, P, CENTRAL, "level"),
    (R.DISTRICT_OPERATOR, Deed.SEND, P, PROVINCE, "level"),
    (R.PROVINCE_OFFICER, Deed.SEND, E, CENTRAL, "level"),
    (R.ADMIN, Deed.SEND, N, CENTRAL, "level"),
    (R.PROVINCE_OFFICER, Deed.SEND, N, COMMUNE, "commune"),
    (R.COMMUNE_OPERATOR, Deed.SCHEDULE, N, DISTRICT, "level"),
    (R.COMMUNE_OPERATOR, Deed.SCHEDULE, N, None, "commune"),
    # Stopping: the sender's level or higher; an emergency only with the emergency right.
    (R.COMMUNE_OPERATOR, Deed.STOP, E, PROVINCE, "role"),  # finding 2
    (R.COMMUNE_OPERATOR, Deed.STOP, E, COMMUNE, "role"),  # the commune cannot block it
    (R.COMMUNE_OPERATOR, Deed.STOP, N, PROVINCE, "level"),
    (R.COMMUNE_OPERATOR, Deed.STOP, P, DISTRICT, "level"),
    (R.COMMUNE_OPERATOR, Deed.STOP, N, COMMUNE, "commune"),
    (R.DISTRICT_OPERATOR, Deed.STOP, P, COMMUNE, "district"),
    (R.DISTRICT_OPERATOR, Deed.STOP, P, PROVINCE, "level"),
    (R.PROVINCE_OFFICER, Deed.STOP, E, CENTRAL, "province"),  # stops anyone's
    (R.ADMIN, Deed.STOP, P, CENTRAL, "province"),
    (R.GATEWAY, Deed.STOP, E, CENTRAL, "central"),  # a CAP Cancel
    (R.EDITOR, Deed.STOP, N, COMMUNE, "role"),
    (R.TECHNICIAN, Deed.STOP, N, COMMUNE, "role"),
    # Changing a schedule: the same level rule.
    (R.COMMUNE_OPERATOR, Deed.CHANGE, N, PROVINCE, "level"),
    (R.COMMUNE_OPERATOR, Deed.CHANGE, N, COMMUNE, "commune"),
    (R.DISTRICT_OPERATOR, Deed.CHANGE, P, COMMUNE, "district"),
    (R.PROVINCE_OFFICER, Deed.CHANGE, N, PROVINCE, "province"),
    (R.OBSERVER, Deed.CHANGE, N, COMMUNE, "role"),
    # Remote operations (a test tone sounds) and firmware: technicians and administrators.
    (R.TECHNICIAN, Deed.OPERATE, None, None, OK),
    (R.ADMIN, Deed.OPERATE, None, None, OK),
    (R.COMMUNE_OPERATOR, Deed.OPERATE, None, None, "role"),
    (R.PROVINCE_OFFICER, Deed.OPERATE, None, None, "role"),
    (R.TECHNICIAN, Deed.ROLLOUT, None, None, OK),
    (R.EDITOR, Deed.ROLLOUT, None, None, "role"),
]


@pytest.mark.parametrize(("role", "deed", "cls", "level", "expected"), SPEC)
def test_the_rules_as_documented(
    role: Role, deed: Deed, cls: CommandClass | None, level: SenderLevel | None, expected: str
) -> None:
    actor = Actor("x", role)
    if expected in ("role", "level"):
        with pytest.raises(Refused) as refused:
            decide(actor, deed, cls=cls, level=level)
        assert refused.value.status_code == 403
        assert isinstance(refused.value.detail, dict)
        assert refused.value.detail["missing"] == expected
        if expected == "level" and deed in (Deed.SEND, Deed.SCHEDULE):
            assert refused.value.detail["field"] == "level"
        return
    done = decide(actor, deed, cls=cls, level=level)
    if expected != OK:
        assert done == SenderLevel(expected)


def test_emergencies_are_sent_never_scheduled() -> None:
    with pytest.raises(InvalidInput):
        decide(Actor("x", Role.ADMIN), Deed.SCHEDULE, cls=E)


def test_the_areas_touched_must_all_lie_inside() -> None:
    actor = Actor("x", Role.COMMUNE_OPERATOR, "25216")
    inside(actor, [("area", "25216", "/70/689/25216/"), ("cluster", "c", "/70/689/25216/h/")])
    with pytest.raises(Refused) as refused:
        inside(actor, [("area", "25216", "/70/689/25216/"), ("area", "25195", "/70/689/25195/")])
    assert refused.value.detail == {"missing": "area", "area": "25195", "yours": "25216"}


def test_every_person_sends_at_a_level_and_every_deed_has_a_right() -> None:
    for role in Role:
        assert own_level(Actor("x", role)) in SenderLevel
        assert role in ALLOWED
    assert {d for d, _ in RIGHTS} == set(Deed)
    # No person but the gateway sends from the central level.
    assert all(own_level(Actor("x", r)) is not CENTRAL for r in PEOPLE)
