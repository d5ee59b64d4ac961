"""Small data for tests that do not need a whole province: a province of two districts,
three communes, a couple of clusters each, made through the API as an administrator."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.device import DeviceSpec
from simulator.provisioning import fetch_specs
from tests.support import Stack

PROVINCE = "70"
# district -> its communes (real codes of old Bình Phước, so codes look like the seed's)
DISTRICTS = {"689": ["25216", "25195"], "695": ["25231"]}


@dataclass(frozen=True)
class SmallProvince:
    specs: list[DeviceSpec]  # every registered cluster (the "-09" ones are meant offline)

    def online(self) -> list[DeviceSpec]:
        """The clusters a test's fleet runs: one per commune (code ending "-01")."""
        return [s for s in self.specs if s.code.endswith("-01")]

    def code(self, commune: str, n: int = 1) -> str:
        return f"{commune}-{n:02d}"


async def small_province(stack: Stack, *, clusters_per_commune: int = 1) -> SmallProvince:
    """Province 70, districts 689 (communes 25216, 25195) and 695 (commune 25231); in each
    commune `clusters_per_commune` clusters "-01", "-02"… and one more, "-09", that a
    test leaves offline (work for it waits, as for a cluster out of reach)."""
    areas = [{"code": PROVINCE, "name": "Tỉnh Bình Phước", "level": "province"}]
    clusters = []
    for district, communes in DISTRICTS.items():
        areas.append(
            {
                "code": district,
                "name": f"Huyện {district}",
                "level": "district",
                "parent_code": "70",
            }
        )
        for commune in communes:
            areas.append(
                {
                    "code": commune,
                    "name": f"Xã {commune}",
                    "level": "commune",
                    "parent_code": district,
                }
            )
            for n in [*range(1, clusters_per_commune + 1), 9]:
                clusters.append(
                    {
                        "code": f"{commune}-{n:02d}",
                        "name": f"Cụm loa {n} xã {commune}",
                        "area_code": commune,
                        "speakers": 2,
                        "latitude": 11.5 + n / 100,
                        "longitude": 106.9,
                    }
                )
    for area in areas:
        response = await stack.client.post("/api/v1/areas", json=area)
        assert response.status_code == 201, response.text
    for cluster in clusters:
        response = await stack.client.post("/api/v1/clusters", json=cluster)
        assert response.status_code == 201, response.text
    return SmallProvince(await fetch_specs(stack.settings.public_base_url))


async def add_eboard(stack: Stack, commune: str, code: str) -> DeviceSpec:
    """An e-board registered in `commune`, and its device spec for a fleet."""
    response = await stack.client.post(
        "/api/v1/clusters",
        json={"code": code, "name": f"Bảng tin {commune}", "area_code": commune, "kind": "eboard"},
    )
    assert response.status_code == 201, response.text
    return next(s for s in await fetch_specs(stack.settings.public_base_url) if s.code == code)
