"""Whom many schedules reach, without a query per schedule.

A province holds hundreds of schedules (three a day in each of 111 communes). Resolving
each one's clusters with its own queries made saving a schedule (checked against every
other) and every push of the clusters' documents cost a query per schedule: 0.4 s to
save the 300th schedule of a province (docs/benchmarks.md). Two tools instead:

- `reach_paths` and `may_share`: the area paths a schedule reaches (its areas, and the
  areas of the clusters it names), so that only schedules on the same branch of the tree
  are resolved exactly when looking for overlaps;
- `ClusterIndex`: every cluster under every area path, loaded once, for the push, which
  needs every cluster anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from areas.models import Area
from devices.models import Cluster
from schedules.models import Schedule


async def reach_paths(session: AsyncSession, schedules: Iterable[Schedule]) -> dict[str, list[str]]:
    """Per schedule id: the area paths of its target areas and of its target clusters."""
    chosen = list(schedules)
    area_codes = {code for s in chosen for code in s.target_areas}
    cluster_codes = {code for s in chosen for code in s.target_clusters}
    area_paths: dict[str, str] = {}
    if area_codes:
        rows = await session.execute(select(Area.code, Area.path).where(Area.code.in_(area_codes)))
        area_paths = {code: path for code, path in rows.all()}
    cluster_paths: dict[str, str] = {}
    if cluster_codes:
        rows = await session.execute(
            select(Cluster.code, Area.path)
            .join(Area, Cluster.area_id == Area.id)
            .where(Cluster.code.in_(cluster_codes))
        )
        cluster_paths = {code: path for code, path in rows.all()}
    return {
        s.id: [area_paths[c] for c in s.target_areas if c in area_paths]
        + [cluster_paths[c] for c in s.target_clusters if c in cluster_paths]
        for s in chosen
    }


def may_share(mine: list[str], theirs: list[str]) -> bool:
    """Whether two schedules can reach a common cluster: one reaches an area at or above
    an area the other reaches (paths end with "/", so "/70/6/" is no prefix of "/70/68/")."""
    return any(a.startswith(b) or b.startswith(a) for a in mine for b in theirs)


@dataclass
class ClusterIndex:
    """Every cluster under each area path, and each cluster's id by code."""

    under: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    by_code: dict[str, int] = field(default_factory=dict)
    area_paths: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession) -> ClusterIndex:
        index = cls()
        rows = await session.execute(
            select(Cluster.id, Cluster.code, Area.path).join(Area, Cluster.area_id == Area.id)
        )
        for cluster_id, code, path in rows.all():
            index.by_code[code] = cluster_id
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts) + 1):
                index.under["/" + "/".join(parts[:depth]) + "/"].add(cluster_id)
        areas = await session.execute(select(Area.code, Area.path))
        index.area_paths = {code: path for code, path in areas.all()}
        return index

    def clusters_of(self, schedule: Schedule) -> set[int]:
        found: set[int] = set()
        for code in schedule.target_areas:
            path = self.area_paths.get(code)
            if path is not None:
                found |= self.under.get(path, set())
        found.update(self.by_code[c] for c in schedule.target_clusters if c in self.by_code)
        return found
