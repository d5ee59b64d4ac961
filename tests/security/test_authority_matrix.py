"""Who may put sound on air, stop it or change it, through every route that does: each
role (with its area) x each such route x each class x a target inside / outside the
role's area x (stopping, changing) a subject sent at the role's own level / the next
higher one. The cases and their expected outcomes are generated from the policy
(core/policy.py, authority/rules.py), the answers come from a running stack with a
simulated fleet, and a refused request must have written nothing and reached no
cluster. The rules themselves are pinned row by row in tests/authority/test_rules.py."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from audit.models import AuditEvent
from authority.rules import Deed, Refused, decide, own_level
from broadcast import sending
from broadcast.models import Broadcast, Delivery
from broadcast.schemas import BroadcastCreate
from bulletins.models import Bulletin, InboxItem
from cap.airing import gateway_actor
from core.actors import PEOPLE, Actor, Role
from core.database import session_scope
from core.errors import InvalidInput
from core.policy import ALLOWED, Action
from firmware.models import Rollout
from health.models import Operation
from media.models import MediaFile
from schedules.models import Schedule
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, upload
from tests.cap.helpers import InfoSpec, alert, xml
from tests.cap.test_cap_in import CAP_HEADERS
from tests.factories import small_province
from tests.security.helpers import make_user, signed_in
from tests.support import Stack, eventually
from wire.protocol import LEVEL_RANK, CommandClass, SenderLevel

INSIDE, OUTSIDE = "25216", "25231"  # a commune of district 689; one of district 695
SCOPE = {  # each person's area: a commune, a district, or the whole province
    Role.COMMUNE_OPERATOR: INSIDE,
    Role.DISTRICT_OPERATOR: "689",
    Role.TECHNICIAN: "689",
}
ROLES = sorted(PEOPLE)
E, P, N = CommandClass.EMERGENCY, CommandClass.PRIORITY, CommandClass.NORMAL


@dataclass(frozen=True)
class Route:
    """A route that airs, stops or changes, with what its guard asks before the service's
    authority check (the two must agree; both come from the policy)."""

    name: str
    deed: Deed
    classes: tuple[CommandClass | None, ...]
    gates: tuple[Action, ...] = ()  # rights the route itself asks for
    province_only: bool = False  # the route is for people not scoped to an area
    fixed_level: SenderLevel | None = None  # the level the route always airs at
    subjects: bool = False  # it acts on an existing broadcast, schedule or rollout
    asks_level: bool = False  # the body may ask for a sender level


ROUTES = [
    Route("POST /broadcasts", Deed.SEND, (E, P, N), asks_level=True),
    Route("POST /bulletins/{id}/distribute", Deed.SEND, (E, P, N), (Action.DISTRIBUTE,)),
    Route(
        "POST /inbox/{id}/accept",
        Deed.SEND,
        (N,),
        (Action.INBOX,),
        fixed_level=SenderLevel.COMMUNE,
    ),
    Route("POST /central/inbox", Deed.SEND, (P,), (Action.SEND_EMERGENCY,), province_only=True),
    Route("POST /cap", Deed.SEND, (P,), (Action.SEND_EMERGENCY,), province_only=True),
    Route("POST /schedules", Deed.SCHEDULE, (E, P, N), (Action.SCHEDULE,), asks_level=True),
    Route("POST /operations (test tone)", Deed.OPERATE, (None,)),
    Route("POST /broadcasts/{id}/cancel", Deed.STOP, (E, P, N), (Action.CANCEL,), subjects=True),
    Route("PATCH /schedules/{id}", Deed.CHANGE, (P, N), subjects=True),
    Route("POST /rollouts/{id}/pause", Deed.ROLLOUT, (None,), subjects=True),
]


@dataclass(frozen=True)
class Case:
    route: Route
    role: Role
    cls: CommandClass | None
    where: str  # INSIDE or OUTSIDE
    subject_level: SenderLevel | None  # stop, change: the level the subject was sent at
    asked_level: SenderLevel | None = None  # send, schedule: the level the body asks for

    @property
    def actor(self) -> Actor:
        return Actor(f"u.{self.role.value}", self.role, SCOPE.get(self.role))

    def refusals(self) -> set[str]:
        """What the policy says is missing: "role", "area", "level"; "invalid" where the
        request cannot be made at all (an emergency scheduled). Empty: allowed."""
        actor, missing = self.actor, set()
        missing |= {"role" for gate in self.route.gates if gate not in ALLOWED[self.role]}
        if self.route.province_only and actor.area is not None:
            missing.add("area")
        level = self.subject_level or self.asked_level or self.route.fixed_level
        try:
            decide(actor, self.route.deed, cls=self.cls, level=level)
        except Refused as refused:
            assert isinstance(refused.detail, dict)
            missing.add(refused.detail["missing"])
        except InvalidInput:
            missing.add("invalid")
        if actor.area is not None and self.where == OUTSIDE:
            missing.add("area")
        return missing


def _higher(level: SenderLevel) -> SenderLevel | None:
    above = [lv for lv in SenderLevel if LEVEL_RANK[lv] == LEVEL_RANK[level] + 1]
    return above[0] if above else None


def cases() -> list[Case]:
    found = []
    for route, role, where in itertools.product(ROUTES, ROLES, (INSIDE, OUTSIDE)):
        for cls in route.classes:
            levels: list[SenderLevel | None] = [None]
            if route.subjects and route.deed in (Deed.STOP, Deed.CHANGE):
                own = own_level(Actor("x", role))
                levels = [lv for lv in (own, _higher(own)) if lv is not None]
                if route.deed is Deed.CHANGE:  # nobody schedules from the central level
                    levels = [lv for lv in levels if lv is not SenderLevel.CENTRAL]
            found += [Case(route, role, cls, where, lv) for lv in levels]
            above = _higher(own_level(Actor("x", role)))
            if route.asks_level and above is not None:  # a level above one's own, asked for
                found.append(Case(route, role, cls, where, None, above))
    return found


CASES = cases()
COUNTED = (Broadcast, Delivery, Schedule, Operation, InboxItem, Bulletin, MediaFile, Rollout)


Call = Callable[[], Awaitable[Any]]


class World:
    """The running stack, the people, and the subjects refused requests may share."""

    def __init__(self, stack: Stack, tokens: dict[Role, str], bulletin: str) -> None:
        self.stack, self.tokens, self.bulletin = stack, tokens, bulletin
        self.shared: dict[tuple[Any, ...], str] = {}
        self.inboxes: dict[str, list[str]] = {INSIDE: [], OUTSIDE: []}  # pending items
        self.minute = 0

    async def prepare(self, case: Case) -> Call:
        """The request, with its subject made first (fresh if the request is allowed, so
        that it may use it up; else shared): counting rows around the call sees only
        what the request itself wrote."""
        headers = {"Authorization": f"Bearer {self.tokens[case.role]}"}
        client, route, where = self.stack.client, case.route.name, case.where
        fresh = not case.refusals()
        key = (route, case.cls, where, case.subject_level)
        if route == "POST /broadcasts":
            body = {
                "title": "Tin",
                "class": case.cls,
                "areas": [where],
                "bulletin_id": self.bulletin,
            }
            if case.asked_level is not None:
                body["level"] = case.asked_level
            return lambda: client.post("/api/v1/broadcasts", json=body, headers=headers)
        if route == "POST /bulletins/{id}/distribute":
            url = f"/api/v1/bulletins/{self.bulletin}/distribute"
            body = {"areas": [where], "class": case.cls}
            return lambda: client.post(url, json=body, headers=headers)
        if route == "POST /inbox/{id}/accept":
            item = await self._inbox_item(where, fresh)
            return lambda: client.post(f"/api/v1/inbox/{item}/accept", headers=headers)
        if route == "POST /central/inbox":
            body = _central(where, case.cls)
            return lambda: client.post("/api/v1/central/inbox", json=body, headers=headers)
        if route == "POST /cap":
            cap = _cap(where)
            cap_headers = {**headers, **CAP_HEADERS}
            return lambda: client.post("/api/v1/cap", content=cap, headers=cap_headers)
        if route == "POST /schedules":
            body = self._schedule(case, case.asked_level)
            return lambda: client.post("/api/v1/schedules", json=body, headers=headers)
        if route == "POST /operations (test tone)":
            body = {"kind": "test_tone", "params": {"seconds": 1}, "areas": [where]}
            return lambda: client.post("/api/v1/operations", json=body, headers=headers)
        if route == "POST /broadcasts/{id}/cancel":
            made = await self._subject(key, fresh, lambda: self._broadcast(case))
            return lambda: client.post(f"/api/v1/broadcasts/{made}/cancel", headers=headers)
        if route == "PATCH /schedules/{id}":
            made = await self._subject(key, fresh, lambda: self._saved_schedule(case))
            body = {"status": "paused"}
            return lambda: client.patch(f"/api/v1/schedules/{made}", json=body, headers=headers)
        assert route == "POST /rollouts/{id}/pause"
        made = await self._subject(key, fresh, lambda: self._rollout(where))
        return lambda: client.post(f"/api/v1/rollouts/{made}/pause", headers=headers)

    async def _subject(self, key: tuple[Any, ...], fresh: bool, make: Callable[[], Any]) -> str:
        if fresh:
            made: str = await make()
            return made
        if key not in self.shared:
            self.shared[key] = await make()
        return self.shared[key]

    async def _inbox_item(self, where: str, fresh: bool) -> str:
        """A pending item in the commune's inbox; an allowed accept takes it out."""
        if not self.inboxes[where]:
            sent = await self.stack.client.post(
                f"/api/v1/bulletins/{self.bulletin}/distribute",
                json={"areas": [INSIDE, OUTSIDE], "class": "normal"},
            )
            assert sent.status_code == 200, sent.text
            pending = await self.stack.client.get("/api/v1/inbox?status=pending&limit=500")
            known = {i for items in self.inboxes.values() for i in items}
            for item in pending.json()["items"]:
                if str(item["id"]) not in known and item["area_code"] in self.inboxes:
                    self.inboxes[item["area_code"]].append(str(item["id"]))
        return self.inboxes[where].pop() if fresh else self.inboxes[where][-1]

    def _schedule(self, case: Case, level: SenderLevel | None = None) -> dict[str, Any]:
        self.minute += 1
        starts = datetime.now(UTC).replace(tzinfo=None, microsecond=0, second=0)
        body: dict[str, Any] = {
            "title": "Tin sáng",
            "bulletin_id": self.bulletin,
            "class": case.cls,
            "starts_local": (starts + timedelta(days=3, minutes=self.minute)).isoformat(),
            "areas": [case.where],
            "accept_conflicts": True,
        }
        if level is not None:
            body["level"] = level
        return body

    async def _broadcast(self, case: Case) -> str:
        """Sent at the subject's level: by the administrator (who may ask for a lower
        one), or from the central level by the gateway (as CAP does)."""
        assert case.subject_level is not None and case.cls is not None
        data = BroadcastCreate.model_validate(
            {
                "title": "Đã phát",
                "class": case.cls,
                "level": case.subject_level,
                "areas": [case.where],
                "bulletin_id": self.bulletin,
            }
        )
        central = case.subject_level is SenderLevel.CENTRAL
        sender = gateway_actor("tw") if central else Actor("admin", Role.ADMIN)
        return (await sending.send(self.stack.runtime, data, sender)).id

    async def _saved_schedule(self, case: Case) -> str:
        body = self._schedule(case, case.subject_level)
        saved = await self.stack.client.post("/api/v1/schedules", json=body)
        assert saved.status_code == 201, saved.text
        return str(saved.json()["id"])

    async def _rollout(self, where: str) -> str:
        # To the commune's offline cluster: it stays running, waiting for it.
        body = {"firmware": "9.0.0", "clusters": [f"{where}-09"]}
        made = await self.stack.client.post("/api/v1/rollouts", json=body)
        assert made.status_code == 201, made.text
        rollout = made.json()["id"]
        await eventually(  # its first tick done: it writes nothing more while we count
            lambda: self.stack.client.get(f"/api/v1/rollouts/{rollout}"),
            lambda r: (
                "waiting" in r.json()["reason"] or r.json()["clusters"][0]["state"] != "pending"
            ),
            what="the rollout waiting for its cluster",
        )
        return str(rollout)

    async def counts(self) -> dict[str, int]:
        """How many rows each table that a request could write holds (one query)."""
        counted = [select(func.count()).select_from(m).scalar_subquery() for m in COUNTED]
        async with session_scope(self.stack.runtime.sessions) as session:
            row = (await session.execute(select(*counted))).one()
        return {m.__tablename__: n for m, n in zip(COUNTED, row, strict=True)}


def _cap(where: str) -> bytes:
    """A CAP 1.2 alert the mapping reads as priority (Expected, Moderate, Likely)."""
    words = {"urgency": "Expected", "severity": "Moderate", "certainty": "Likely"}
    info = InfoSpec(geocodes=[where], **words)
    return xml(alert(f"VN-{uuid.uuid4()}", info, sent=datetime.now(UTC)))


def _central(where: str, cls: CommandClass | None) -> dict[str, Any]:
    return {
        "identifier": f"TW-{uuid.uuid4()}",
        "sender": "tw.example",
        "sent": datetime.now(UTC).isoformat(),
        "class": cls,
        "areas": [where],
        "texts": [{"language": "vi", "title": "Tin", "text": "Nước sông lên."}],
    }


@pytest.fixture
async def world(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> tuple[World, Fleet]:
    province = await small_province(stack)
    fleet = fleet_factory(province.online(), time_compression=20)
    await fleet.start()
    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(stack, title="Lịch tiêm phòng", media_sha256=media["sha256"])
    firmware = await stack.client.post(
        "/api/v1/firmware",
        data={"version": "9.0.0"},
        files={"file": ("9.0.0.bin", b"\x7fELF" + bytes(64))},
    )
    assert firmware.status_code == 201, firmware.text
    approved = await stack.client.post(  # by a second person, as every release must be
        "/api/v1/firmware/9.0.0/approve", headers={"x-actor": "ky.thuat.2", "x-role": "admin"}
    )
    assert approved.status_code == 200, approved.text
    tokens = {}
    for role in ROLES:
        await make_user(stack, f"u.{role.value}", role=role.value, area=SCOPE.get(role))
        tokens[role] = await signed_in(stack, f"u.{role.value}")
    return World(stack, tokens, bulletin["id"]), fleet


async def test_every_role_against_every_route_that_airs_stops_or_changes(
    world: tuple[World, Fleet],
) -> None:
    w, fleet = world
    stack = w.stack
    allowed_sends: set[str] = set()
    stopped: set[str] = set()
    forbidden = 0
    for case in CASES:
        expected = case.refusals()
        call = await w.prepare(case)
        before = await w.counts()
        response = await call()
        what = (case.route.name, case.role.value, case.cls, case.where, case.subject_level)
        what += (case.asked_level,)
        if not expected:
            assert response.status_code in (200, 201), (what, response.text)
            body = response.json()
            if case.route.deed is Deed.SEND and body.get("broadcast_id", body.get("id")):
                allowed_sends.add(body.get("broadcast_id") or body["id"])
            if case.route.deed is Deed.STOP:
                stopped.add(body["id"])
            continue
        if response.status_code == 422:
            assert "invalid" in expected, (what, response.text)
            continue
        assert response.status_code == 403, (what, expected, response.text)
        forbidden += 1
        detail = response.json()["detail"]
        assert detail["missing"] in expected, (what, expected, detail)
        assert await w.counts() == before, what  # nothing written, nothing sent
    assert forbidden > 100 and len(allowed_sends) > 10 and stopped

    # Every broadcast the fleet heard exists (allowed, or a subject the test set up), and
    # every allowed one reached its commune's cluster; only allowed cancels were heard.
    heard, cancels = await eventually(
        lambda: _heard(fleet),
        lambda h: allowed_sends <= h[0],
        what="every allowed broadcast on its cluster",
    )
    async with session_scope(stack.runtime.sessions) as session:
        existing = set((await session.scalars(select(Broadcast.id))).all())
        denied = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.status == 403)
        )
    assert heard <= existing
    assert cancels <= stopped
    assert denied == forbidden  # every refusal is on record


async def _heard(fleet: Fleet) -> tuple[set[str], set[str]]:
    commanded: set[str] = set()
    cancels: set[str] = set()
    for device in fleet.devices.values():
        commanded |= device.commanded
        cancels |= device.cancels
    return commanded, cancels
