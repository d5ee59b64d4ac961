"""`broadcast seed demo`: a whole province, from official data.

Units and codes come from the vietnam-provinces package (2026.9: today's 34 provinces and
3,321 communes and wards, the tree before the reform under `vietnam_provinces.legacy`,
and the official conversion of 1 July 2025, looked up by code, never by name).

- **Today** (the default): Đồng Nai (75) as it has been since 1 July 2025, the province
  and its 95 communes and wards with no district between them, and the fleet the merged
  province would have: old Bình Phước's 1,639 clusters (the figure of the seed documents)
  each placed in the commune or ward its old commune became, plus old Đồng Nai's. No
  published figure was found for old Đồng Nai's fleet, so it is an **assumption**: Bình
  Phước's density (1,639 clusters in 111 communes) over its 159 communes, 2,348 clusters.
  A cluster whose old commune was split goes to the nearest successor's seat. One e-board
  per ward (phường).
- **`as_of` before 1 July 2025**: old Bình Phước (70) as the seed documents describe it, 11
  district-level units and 111 communes. The benchmarks seed this one, so that their
  figures stay comparable with those recorded before the reform.

Positions are synthetic: communes are laid around the approximate seat of their old
district and clusters around their commune, so maps look plausible; they are not
surveyed locations. A new ward's seat is the mean of its old communes'.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from vietnam_provinces import Province, ProvinceCode, VietNamDivisionType, Ward
from vietnam_provinces.legacy import District as LegacyDistrict
from vietnam_provinces.legacy import Province as LegacyProvince
from vietnam_provinces.legacy import ProvinceCode as LegacyProvinceCode
from vietnam_provinces.legacy import VietNamDivisionType as LegacyType
from vietnam_provinces.legacy import Ward as LegacyWard

from accounts import passwords
from areas.models import Area
from core.clock import Clock
from core.database import chunked
from devices.models import Cluster

REFORM_DAY = date(2025, 7, 1)  # the two-level administration and the merged provinces
BEFORE_REFORM = date(2025, 6, 30)
PROVINCE_CODE = 75  # Đồng Nai since 1 July 2025 (old Bình Phước and old Đồng Nai)
LEGACY_PROVINCE_CODE = 70  # Tỉnh Bình Phước, before
LEGACY_SOURCES = (70, 75)  # the old provinces the new Đồng Nai was made of
CLUSTERS_TOTAL = 1639  # Bình Phước, February 2023: 1,639 clusters ...
SPEAKERS_TOTAL = 3807  # ... holding 3,807 speakers, in 111 communes of 11 districts
BINH_PHUOC_COMMUNES = 111
OLD_DONG_NAI_CLUSTERS = round(CLUSTERS_TOTAL / BINH_PHUOC_COMMUNES * 159)  # assumed: 2,348
MERGED_CLUSTERS = CLUSTERS_TOTAL + OLD_DONG_NAI_CLUSTERS
MAX_SPEAKERS_PER_CLUSTER = 4
MIN_CLUSTERS_PER_COMMUNE = 8
SEED = 2023

# Approximate seats of the old district-level units (lat, lon): the only hand-typed data.
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
    731: (10.950, 106.820),  # Thành phố Biên Hòa
    732: (10.930, 107.240),  # Thành phố Long Khánh
    734: (11.270, 107.430),  # Huyện Tân Phú
    735: (11.100, 106.980),  # Huyện Vĩnh Cửu
    736: (11.200, 107.350),  # Huyện Định Quán
    737: (10.950, 107.000),  # Huyện Trảng Bom
    738: (10.980, 107.150),  # Huyện Thống Nhất
    739: (10.800, 107.270),  # Huyện Cẩm Mỹ
    740: (10.780, 106.950),  # Huyện Long Thành
    741: (10.930, 107.400),  # Huyện Xuân Lộc
    742: (10.700, 106.880),  # Huyện Nhơn Trạch
}
COMMUNE_SPREAD_DEG = 0.10  # communes lie within ~11 km of the district seat
CLUSTER_SPREAD_DEG = 0.02  # clusters within ~2 km of the commune centre
# Towns and wards get an e-board (the two package versions of the type are distinct enums).
URBAN_BEFORE = frozenset({LegacyType.PHUONG, LegacyType.THI_TRAN})


@dataclass(frozen=True)
class SeedReport:
    province: str
    districts: int
    communes: int
    clusters: int
    speakers: int
    eboards: int
    created: bool


@dataclass(frozen=True)
class _OldCommune:
    code: int
    name: str
    district: int
    urban: bool
    centre: tuple[float, float]


def _old_communes(province: int, rng: random.Random) -> list[_OldCommune]:
    """A province's communes before the reform, in code order, with synthetic centres."""
    found = []
    districts = LegacyDistrict.iter_by_province(LegacyProvinceCode(province))
    for district in sorted(districts, key=lambda d: d.code):
        lat0, lon0 = DISTRICT_SEATS[int(district.code)]
        for ward in sorted(LegacyWard.iter_by_district(district.code), key=lambda w: w.code):
            centre = (
                lat0 + rng.uniform(-1, 1) * COMMUNE_SPREAD_DEG,
                lon0 + rng.uniform(-1, 1) * COMMUNE_SPREAD_DEG,
            )
            urban = ward.division_type in URBAN_BEFORE
            found.append(_OldCommune(int(ward.code), ward.name, int(district.code), urban, centre))
    return found


def _spread(rng: random.Random, total: int, places: int) -> list[int]:
    """`total` clusters over `places` communes: each at least 8, the rest at random."""
    base = min(MIN_CLUSTERS_PER_COMMUNE, total // places)
    counts = [base] * places
    for _ in range(total - sum(counts)):
        counts[rng.randrange(places)] += 1
    return counts


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


def _speakers_for(clusters: int) -> int:
    return round(clusters * SPEAKERS_TOTAL / CLUSTERS_TOTAL)


async def seed_demo(
    session: AsyncSession,
    clock: Clock,
    *,
    as_of: date | None = None,
    clusters: int | None = None,
    eboards: bool = True,
) -> SeedReport:
    """Build the province as it was on `as_of` (default: today); does nothing if it is
    already there. `clusters` scales the fleet (load tests); speakers scale with it."""
    if as_of is not None and as_of < REFORM_DAY:
        return await _seed_before_reform(session, clock, clusters or CLUSTERS_TOTAL, eboards)
    return await _seed_today(session, clock, clusters or MERGED_CLUSTERS, eboards)


async def _already(session: AsyncSession, code: str) -> bool:
    return (await session.execute(select(Area.id).where(Area.code == code))).first() is not None


def _area(
    parent: Area | None, code: int, name: str, level: str, now: object, since: date | None = None
) -> Area:
    """A unit under `parent` (None: the province), its path and depth derived."""
    return Area(
        code=str(code),
        name=name,
        level=level,
        parent_id=parent.id if parent is not None else None,
        path=f"{parent.path if parent is not None else '/'}{code}/",
        depth=parent.depth + 1 if parent is not None else 0,
        created_at=now,
        since=since,
    )


async def _seed_today(
    session: AsyncSession, clock: Clock, clusters: int, eboards: bool
) -> SeedReport:
    province = Province.from_code(ProvinceCode(PROVINCE_CODE))
    wards = sorted(Ward.iter_by_province(province.code), key=lambda w: w.code)
    if await _already(session, str(PROVINCE_CODE)):
        return SeedReport(province.name, 0, len(wards), 0, 0, 0, False)
    rng = random.Random(SEED)
    now = clock.now()
    # Since the reform, as the reorganisation would have made it: not to be redone.
    root = _area(None, PROVINCE_CODE, province.name, "province", now, REFORM_DAY)
    session.add(root)
    await session.flush()
    areas = {}
    for ward in wards:
        area = _area(root, int(ward.code), ward.name, "commune", now, REFORM_DAY)
        session.add(area)
        areas[int(ward.code)] = area
    await session.flush()

    # The old fleets, commune by commune, each cluster where its old commune now belongs.
    binh_phuoc = round(clusters * CLUSTERS_TOTAL / MERGED_CLUSTERS)
    old: list[tuple[_OldCommune, int]] = []
    for source, share in zip(LEGACY_SOURCES, (binh_phuoc, clusters - binh_phuoc), strict=True):
        communes = _old_communes(source, rng)
        old += zip(communes, _spread(rng, share, len(communes)), strict=True)
    seats = _ward_seats(commune for commune, _ in old)
    speakers = _speaker_counts(rng, clusters, _speakers_for(clusters))
    installed = date(2021, 6, 1)
    numbered: dict[int, int] = {}
    rows: list[dict[str, object]] = []
    for commune, n in old:
        for _ in range(n):
            lat, lon = _near(rng, commune.centre)
            home = _successor(commune.code, (lat, lon), seats)
            numbered[home] = numbered.get(home, 0) + 1
            area = areas[home]
            rows.append(
                _cluster_row(
                    f"{home}-{numbered[home]:02d}",
                    f"Cụm loa {area.name} số {numbered[home]}",
                    "speaker_cluster",
                    area.id,
                    lat,
                    lon,
                    speakers[len(rows)],
                    installed,
                    now,
                )
            )
    boards = [w for w in wards if eboards and w.division_type is VietNamDivisionType.PHUONG]
    for ward in boards:
        code = int(ward.code)
        rows.append(
            _cluster_row(
                f"EB-{code}",
                f"Bảng tin điện tử {ward.name}",
                "eboard",
                areas[code].id,
                *_near(rng, seats[code]),
                0,
                installed,
                now,
            )
        )
    await _insert_clusters(session, rows)
    return SeedReport(province.name, 0, len(wards), clusters, sum(speakers), len(boards), True)


def _ward_seats(old: Iterator[_OldCommune]) -> dict[int, tuple[float, float]]:
    """Each new ward's seat: the mean of the centres of the old communes it was made of."""
    centres: dict[int, list[tuple[float, float]]] = {}
    for commune in old:
        for successor in Ward.search_from_legacy(code=commune.code):
            centres.setdefault(int(successor.ward.code), []).append(commune.centre)
    return {
        ward: (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))
        for ward, points in centres.items()
    }


def _successor(
    old_code: int, at: tuple[float, float], seats: dict[int, tuple[float, float]]
) -> int:
    """The ward an old commune's cluster now belongs to: the only successor, or, where the
    commune was split (one in old Đồng Nai), the successor whose seat is nearest."""
    successors = [int(s.ward.code) for s in Ward.search_from_legacy(code=old_code)]
    return min(successors, key=lambda w: math.dist(seats[w], at))


def _near(rng: random.Random, centre: tuple[float, float]) -> tuple[float, float]:
    return (
        round(centre[0] + rng.uniform(-1, 1) * CLUSTER_SPREAD_DEG, 6),
        round(centre[1] + rng.uniform(-1, 1) * CLUSTER_SPREAD_DEG, 6),
    )


async def _seed_before_reform(
    session: AsyncSession, clock: Clock, clusters: int, eboards: bool
) -> SeedReport:
    """Old Bình Phước: province, its 11 district-level units, their 111 communes."""
    province = LegacyProvince.from_code(LegacyProvinceCode(LEGACY_PROVINCE_CODE))
    districts = sorted(LegacyDistrict.iter_by_province(province.code), key=lambda d: d.code)
    rng = random.Random(SEED)
    communes = _old_communes(LEGACY_PROVINCE_CODE, rng)
    if await _already(session, str(LEGACY_PROVINCE_CODE)):
        return SeedReport(province.name, len(districts), len(communes), 0, 0, 0, False)
    now = clock.now()
    root = _area(None, LEGACY_PROVINCE_CODE, province.name, "province", now)
    session.add(root)
    await session.flush()
    district_rows = {}
    for d in districts:
        area = _area(root, int(d.code), d.name, "district", now)
        session.add(area)
        district_rows[int(d.code)] = area
    await session.flush()
    commune_rows = []
    for commune in communes:
        area = _area(district_rows[commune.district], commune.code, commune.name, "commune", now)
        session.add(area)
        commune_rows.append((area, commune))
    await session.flush()

    per_commune = _spread(rng, clusters, len(commune_rows))
    speakers = _speaker_counts(rng, clusters, _speakers_for(clusters))
    installed = date(2021, 6, 1)
    rows: list[dict[str, object]] = []
    eboard_count = 0
    for (area, commune), n in zip(commune_rows, per_commune, strict=True):
        for i in range(1, n + 1):
            rows.append(
                _cluster_row(
                    f"{area.code}-{i:02d}",
                    f"Cụm loa {commune.name} số {i}",
                    "speaker_cluster",
                    area.id,
                    *_near(rng, commune.centre),
                    speakers[len(rows) - eboard_count],
                    installed,
                    now,
                )
            )
        if eboards and commune.urban:  # towns, wards: e-boards
            rows.append(
                _cluster_row(
                    f"EB-{area.code}",
                    f"Bảng tin điện tử {commune.name}",
                    "eboard",
                    area.id,
                    *_near(rng, commune.centre),
                    0,
                    installed,
                    now,
                )
            )
            eboard_count += 1
    await _insert_clusters(session, rows)
    return SeedReport(
        province.name,
        len(districts),
        len(communes),
        clusters,
        sum(speakers),
        eboard_count,
        True,
    )


async def _insert_clusters(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    for chunk in chunked(rows, columns_per_row=len(rows[0])):
        await session.execute(insert(Cluster), chunk)
    await session.flush()


def _cluster_row(
    code: str,
    name: str,
    kind: str,
    area_id: int,
    lat: float,
    lon: float,
    speakers: int,
    installed: date,
    now: object,
) -> dict[str, object]:
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "area_id": area_id,
        "latitude": lat,
        "longitude": lon,
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
    ("ky.thuat", "technician", "25217", "Kỹ thuật viên Phước Long"),
    ("xa.phuoclong", "commune_operator", "25217", "Cán bộ Phường Phước Long"),
    ("bien.tap", "editor", None, "Ban biên tập tỉnh"),
    ("quan.tri", "admin", None, "Quản trị hệ thống"),
)
# The same people in old Bình Phước (`--as-of 2025-06-30`): Phường Thác Mơ is part of
# Phường Phước Long today.
DEMO_USERS_BEFORE_REFORM = (
    DEMO_USERS[0],
    ("ky.thuat", "technician", "688", "Kỹ thuật viên Phước Long"),
    ("xa.thacmo", "commune_operator", "25216", "Cán bộ Phường Thác Mơ"),
    *DEMO_USERS[3:],
)


async def seed_demo_users(session: AsyncSession, clock: Clock) -> list[str]:
    """The demo's accounts that did not exist yet."""
    from accounts import service as accounts
    from accounts.models import User
    from accounts.schemas import UserCreate

    created = []
    today = await _already(session, str(PROVINCE_CODE))
    for username, role, area, name in DEMO_USERS if today else DEMO_USERS_BEFORE_REFORM:
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
    from core.database import create_engine, create_session_maker
    from core.writes import writing_for

    engine = create_engine(database_url)
    try:
        async with writing_for(create_session_maker(engine))() as session:
            await seed_demo_users(session, SystemClock())
    finally:
        await engine.dispose()
