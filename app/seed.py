"""`broadcast seed demo`: the province of the seed documents, from official data.

Areas and codes come from the vietnam-provinces package (0.6.x: the tree before the
1 July 2025 reform, with the district level). Positions are synthetic: communes are laid
around the approximate seat of their district and clusters around their commune, so maps
look plausible; they are not surveyed locations.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import passwords
from areas.models import Area
from core.clock import Clock
from core.database import chunked
from devices.models import Cluster

PROVINCE_CODE = 70  # Tỉnh Bình Phước in the national code list
CLUSTERS_TOTAL = 1639  # February 2023: 1,639 clusters ...
SPEAKERS_TOTAL = 3807  # ... holding 3,807 speakers, in 111 communes of 11 districts
MAX_SPEAKERS_PER_CLUSTER = 4
SEED = 2023

# Approximate seats of the 11 district-level units (lat, lon): the only hand-typed data.
DISTRICT_SEATS: dict[int, tuple[float, float]] = {
    688: (11.835, 106.995),  # Thị xã Phước Long
    689: (11.535, 106.890),  # Thành phố Đồng Xoài
    690: (11.650, 106.605),  # Thị xã Bình Long
    691: (12.010, 106.970),  # Huyện Bù Gia Mập
    692: (11.840, 106.590),  # Huyện Lộc Ninh
    693: (11.985, 106.830),  # Huyện Bù Đốp
    694: (11.610, 106.700),  # Huyện Hớn Quản
    695: (11.480, 106.960),  # Huyện Đồng Phú
    696: (11.770, 107.235),  # Huyện Bù Đăng
    697: (11.430, 106.650),  # Thị xã Chơn Thành
    698: (11.720, 106.920),  # Huyện Phú Riềng
}
COMMUNE_SPREAD_DEG = 0.10  # communes lie within ~11 km of the district seat
CLUSTER_SPREAD_DEG = 0.02  # clusters within ~2 km of the commune centre
# The package's 0.6 data types every commune-level unit "xã"; the name says what it is.
URBAN_PREFIXES = ("Phường", "Thị trấn")


@dataclass(frozen=True)
class SeedReport:
    province: str
    districts: int
    communes: int
    clusters: int
    speakers: int
    eboards: int
    created: bool


def _province_tree() -> dict[str, object]:
    from vietnam_provinces import NESTED_DIVISIONS_JSON_PATH

    provinces = json.loads(NESTED_DIVISIONS_JSON_PATH.read_text(encoding="utf-8"))
    return next(p for p in provinces if p["code"] == PROVINCE_CODE)


def _speaker_counts(rng: random.Random, n: int, total: int) -> list[int]:
    """n clusters of 1 to 4 speakers adding up to exactly `total`."""
    counts = [rng.choice((1, 2, 2, 2, 3, 3, 4)) for _ in range(n)]
    while (diff := total - sum(counts)) != 0:
        i = rng.randrange(n)
        if diff > 0 and counts[i] < MAX_SPEAKERS_PER_CLUSTER:
            counts[i] += 1
        elif diff < 0 and counts[i] > 1:
            counts[i] -= 1
    return counts


async def seed_demo(
    session: AsyncSession,
    clock: Clock,
    *,
    clusters: int = CLUSTERS_TOTAL,
    eboards: bool = True,
) -> SeedReport:
    """Build Bình Phước; does nothing if the province is already there.

    `clusters` other than 1,639 scales the fleet (load tests); speakers scale with it.
    """
    tree = _province_tree()
    code = str(tree["code"])
    districts: list[dict[str, object]] = tree["districts"]  # type: ignore[assignment]
    communes = [(d, w) for d in districts for w in d["wards"]]  # type: ignore[attr-defined]
    existing = await session.execute(select(Area.id).where(Area.code == code))
    if existing.first() is not None:
        return SeedReport(str(tree["name"]), len(districts), len(communes), 0, 0, 0, False)

    rng = random.Random(SEED)
    now = clock.now()
    province = Area(
        code=code,
        name=str(tree["name"]),
        level="province",
        parent_id=None,
        path=f"/{code}/",
        depth=0,
        created_at=now,
    )
    session.add(province)
    await session.flush()
    district_rows = {}
    for d in districts:
        area = Area(
            code=str(d["code"]),
            name=str(d["name"]),
            level="district",
            parent_id=province.id,
            path=f"{province.path}{d['code']}/",
            depth=1,
            created_at=now,
        )
        session.add(area)
        district_rows[d["code"]] = area
    await session.flush()
    commune_rows = []
    for d, w in communes:
        parent = district_rows[d["code"]]
        area = Area(
            code=str(w["code"]),
            name=str(w["name"]),
            level="commune",
            parent_id=parent.id,
            path=f"{parent.path}{w['code']}/",
            depth=2,
            created_at=now,
        )
        session.add(area)
        lat0, lon0 = DISTRICT_SEATS[int(d["code"])]  # type: ignore[call-overload]
        centre = (
            lat0 + rng.uniform(-1, 1) * COMMUNE_SPREAD_DEG,
            lon0 + rng.uniform(-1, 1) * COMMUNE_SPREAD_DEG,
        )
        commune_rows.append((area, w, centre))
    await session.flush()

    # Clusters: every commune gets at least 8, the rest spread at random (wards more).
    base = min(8, clusters // len(commune_rows))
    per_commune = [base] * len(commune_rows)
    for _ in range(clusters - sum(per_commune)):
        per_commune[rng.randrange(len(commune_rows))] += 1
    speakers = _speaker_counts(rng, clusters, round(clusters * SPEAKERS_TOTAL / CLUSTERS_TOTAL))
    installed = date(2021, 6, 1)
    rows: list[dict[str, object]] = []
    eboard_count = 0
    k = 0
    for (area, ward, (lat, lon)), n in zip(commune_rows, per_commune, strict=True):
        for i in range(1, n + 1):
            rows.append(
                _cluster_row(
                    f"{area.code}-{i:02d}",
                    f"Cụm loa {ward['name']} số {i}",
                    "speaker_cluster",
                    area.id,
                    lat,
                    lon,
                    rng,
                    speakers[k],
                    installed,
                    now,
                )
            )
            k += 1
        if eboards and str(ward["name"]).startswith(URBAN_PREFIXES):  # towns, wards: e-boards
            rows.append(
                _cluster_row(
                    f"EB-{area.code}",
                    f"Bảng tin điện tử {ward['name']}",
                    "eboard",
                    area.id,
                    lat,
                    lon,
                    rng,
                    0,
                    installed,
                    now,
                )
            )
            eboard_count += 1
    for chunk in chunked(rows, columns_per_row=len(rows[0])):
        await session.execute(insert(Cluster), chunk)
    await session.flush()
    return SeedReport(
        str(tree["name"]),
        len(districts),
        len(communes),
        clusters,
        sum(speakers),
        eboard_count,
        True,
    )


def _cluster_row(
    code: str,
    name: str,
    kind: str,
    area_id: int,
    lat: float,
    lon: float,
    rng: random.Random,
    speakers: int,
    installed: date,
    now: object,
) -> dict[str, object]:
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "area_id": area_id,
        "latitude": round(lat + rng.uniform(-1, 1) * CLUSTER_SPREAD_DEG, 6),
        "longitude": round(lon + rng.uniform(-1, 1) * CLUSTER_SPREAD_DEG, 6),
        "speakers": speakers,
        "firmware": "1.4.2" if kind == "speaker_cluster" else "eb-2.1",
        "installed_on": installed,
        "created_at": now,
        "online": False,
    }


# Demo accounts (development only): one per kind of person who runs the system, all with
# this password, printed by `broadcast demo`.
DEMO_PASSWORD = passwords.DEMO_PASSWORD  # printed in the README; refused in production
DEMO_USERS = (
    ("truc.ban", "province_officer", None, "Trực ban tỉnh"),
    ("ky.thuat", "technician", "688", "Kỹ thuật viên Phước Long"),
    ("xa.thacmo", "commune_operator", "25216", "Cán bộ Phường Thác Mơ"),
    ("bien.tap", "editor", None, "Ban biên tập tỉnh"),
    ("quan.tri", "admin", None, "Quản trị hệ thống"),
)


async def seed_demo_users(session: AsyncSession, clock: Clock) -> list[str]:
    """The demo's accounts that did not exist yet."""
    from accounts import service as accounts
    from accounts.models import User
    from accounts.schemas import UserCreate

    created = []
    for username, role, area, name in DEMO_USERS:
        if await session.scalar(select(User.id).where(User.username == username)) is None:
            data = UserCreate.model_validate(
                {
                    "username": username,
                    "password": DEMO_PASSWORD,
                    "role": role,
                    "area": area,
                    "full_name": name,
                }
            )
            await accounts.create(session, data, by="demo", now=clock.now())
            created.append(username)
    return created


async def ensure_demo_users(database_url: str) -> None:
    """The demo accounts in the database at `database_url` (a process of its own)."""
    from core.clock import SystemClock
    from core.database import create_engine, create_session_maker, session_scope

    engine = create_engine(database_url)
    try:
        async with session_scope(create_session_maker(engine)) as session:
            await seed_demo_users(session, SystemClock())
    finally:
        await engine.dispose()
