"""Which tables travel in an archive, how an imported row is recognised in the receiving
register, and which tables stay behind and why (docs/archive.md).

The list of tables, their order and their foreign keys come from the models' metadata,
so a table added later cannot be silently forgotten: `check_complete` (run by every
export and import, and by a test) refuses a table named neither here nor in `LEFT_OUT`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Table

from core.database import Base
from core.models import import_all_models


class Identity(StrEnum):
    # History: every row is a new row here; its integer id is given by this database.
    NEW = "new"
    # A key unique everywhere (a UUID, a sha256, a firmware version): a row whose key is
    # already here is the same row, kept as it is ("present"); with `same`, a row whose
    # key is here but whose values differ is a conflict (a firmware version built twice).
    KEPT = "kept"
    # A natural key (an area's official code): the same unit on both sides when the
    # values in `same` agree ("merged": the archive's rows attach to it), a conflict when
    # they do not.
    MERGED = "merged"
    # A natural key two registers may each have given to different things (a cluster's
    # code, a person's user name): the same key here is a conflict, never overwritten.
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Policy:
    identity: Identity
    key: tuple[str, ...] = ()  # the natural key (KEPT: the primary key when empty)
    same: tuple[str, ...] = ()  # the columns that must agree for the same unit
    label: str = ""  # the column naming a row in the report (default: the key)
    # Columns reset on import: live state that belonged to the other instance.
    reset: tuple[tuple[str, object], ...] = ()
    # Rows written in this order (default: the primary key): parents before children.
    order: tuple[str, ...] = ()
    # (column, from): a column added after archives were first written, which an older
    # archive's rows lack; filled from another column as its migration filled the rows
    # already in a database, so an imported row reads like one that was here.
    filled_from: tuple[tuple[str, str], ...] = ()


H = Policy(Identity.NEW)

POLICIES: dict[str, Policy] = {
    # the register
    "areas": Policy(
        Identity.MERGED,
        key=("code",),
        same=("name", "level", "parent_id", "dissolved_on"),
        order=("depth", "id"),
    ),
    "area_versions": Policy(Identity.MERGED, key=("area_id", "until"), label="code"),
    # Link state is the other broker's: the imported cluster is offline until it says
    # otherwise to ours (its birth message).
    "clusters": Policy(
        Identity.CONFLICT, key=("code",), reset=(("online", False), ("offline_since", None))
    ),
    # Password hashes travel (argon2id, the same on both sides): the people of the merged
    # province sign in with what they had. Their sign-in sessions and API tokens do not.
    "users": Policy(Identity.CONFLICT, key=("username",)),
    # media: content-addressed, the same sha256 is the same bytes
    "media_originals": Policy(Identity.KEPT),
    "media_files": Policy(Identity.KEPT),
    "firmware_images": Policy(Identity.KEPT, same=("sha256",)),
    # Both provinces may have a "flood-evacuate" of their own: the same id with another
    # title or clip is a conflict, reported, and the receiving library's is kept.
    "standard_warnings": Policy(Identity.KEPT, same=("title", "media_sha256")),
    # history
    # No id of its own across instances: the same moment, actor, action and target is
    # the same entry (an archive imported twice adds nothing twice).
    "audit_events": Policy(Identity.KEPT, key=("at", "actor", "action", "target")),
    "bulletins": Policy(Identity.KEPT),
    "bulletin_events": H,
    # Migration 0020: what aired is what the play named (the clusters that heard it hold
    # it; broadcast/sending.py asks by this column).
    "broadcasts": Policy(Identity.KEPT, filled_from=(("aired_sha256", "media_sha256"),)),
    "live_sessions": Policy(Identity.KEPT),  # keyed by its broadcast's UUID
    "deliveries": H,
    "delivery_events": H,
    "inbox_items": H,
    "cap_messages": Policy(Identity.KEPT),
    "schedules": Policy(Identity.KEPT),
    "schedule_firings": H,
    "local_plays": H,
    "cluster_health": H,
    "telemetry_samples": H,
    "alarms": H,
    "operations": Policy(Identity.KEPT),
    "operation_results": H,
    "rollouts": H,
    "rollout_clusters": H,
}

LEFT_OUT: dict[str, str] = {
    "auth_tokens": (
        "sign-in sessions and API tokens: an archive must sign nobody in anywhere; "
        "people sign in again on the receiving instance"
    ),
    "sign_in_failures": (
        "the sign-in throttle's counts per client address, minutes long and meaningful "
        "only to the instance that counted them"
    ),
}


def filled_in(table: str, values: dict[str, Any]) -> dict[str, Any]:
    """An imported row with the columns an older archive lacks filled (Policy.filled_from)."""
    for column, source in POLICIES[table].filled_from:
        if column not in values:
            values[column] = values.get(source)
    return values


class IncompleteTableList(RuntimeError):
    """A table the code does not say what to do with: a developer's error."""


def exported_tables() -> list[Table]:
    """The tables an archive holds, parents before children (the metadata's order)."""
    check_complete()
    return [t for t in Base.metadata.sorted_tables if t.name in POLICIES]


def check_complete() -> None:
    import_all_models()
    names = set(Base.metadata.tables)
    unnamed = names - POLICIES.keys() - LEFT_OUT.keys()
    if unnamed:
        raise IncompleteTableList(
            f"table(s) {', '.join(sorted(unnamed))} neither exported nor left out "
            "(transfer/tables.py): say which, and why"
        )
    stale = (POLICIES.keys() | LEFT_OUT.keys()) - names
    if stale:
        raise IncompleteTableList(f"transfer/tables.py names unknown table(s) {sorted(stale)}")
