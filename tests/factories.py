"""Small data for tests that do not need a whole province: a province of two districts,
three communes, a couple of clusters each, made through the API as an administrator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from simulator.provisioning import specs_from_json
from simulator.spec import DeviceSpec
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

    def of(self, area: str) -> list[DeviceSpec]:
        """Every device registered in `area`, its "-09" and e-board included: what a test
        runs when the whole commune (or district) is to be online, as every cluster of a
        demo commune was."""
        return [s for s in self.specs if area in s.areas]

    def speakers(self, area: str) -> list[DeviceSpec]:
        """The speaker clusters of `area` (no e-board), its "-09" included."""
        return [s for s in self.of(area) if s.kind == "speaker_cluster"]


async def small_province(
    stack: Stack,
    *,
    clusters_per_commune: int = 1,
    eboards: bool = False,
    districts: Mapping[str, list[str]] = DISTRICTS,
) -> SmallProvince:
    """Province 70, districts 689 (communes 25216, 25195) and 695 (commune 25231); in each
    commune `clusters_per_commune` clusters "-01", "-02"… and one more, "-09", that a
    test leaves offline (work for it waits, as for a cluster out of reach).

    `eboards`: an e-board "EB-<commune>" in every commune too, as the demo's towns have.
    `districts`: another layout, for a test that needs more communes in a district."""
    return await small_province_via(
        stack.client,
        clusters_per_commune=clusters_per_commune,
        eboards=eboards,
        districts=districts,
    )


async def small_province_via(
    client: httpx.AsyncClient,
    *,
    clusters_per_commune: int = 1,
    eboards: bool = False,
    districts: Mapping[str, list[str]] = DISTRICTS,
) -> SmallProvince:
    """The same through any administrator's client: a control plane run as a process."""
    areas = [{"code": PROVINCE, "name": "Tỉnh Bình Phước", "level": "province"}]
    clusters = []
    communes = [(d, c) for d, cs in districts.items() for c in cs]
    for district in districts:
        areas.append(
            {
                "code": district,
                "name": f"Huyện {district}",
                "level": "district",
                "parent_code": "70",
            }
        )
    for i, (district, commune) in enumerate(communes):
        areas.append(
            {"code": commune, "name": f"Xã {commune}", "level": "commune", "parent_code": district}
        )
        # Each commune in a place of its own and its clusters not on one line, so the
        # console's map draws every commune apart, as an outline where it has three or more.
        longitude = 106.9 + i / 10
        for n in [*range(1, clusters_per_commune + 1), 9]:
            clusters.append(
                {
                    "code": f"{commune}-{n:02d}",
                    "name": f"Cụm loa {n} xã {commune}",
                    "area_code": commune,
                    "speakers": 2,
                    "latitude": 11.5 + n / 100,
                    "longitude": longitude + n % 2 / 100,
                }
            )
        if eboards:
            clusters.append(
                {
                    "code": f"EB-{commune}",
                    "name": f"Bảng tin điện tử xã {commune}",
                    "kind": "eboard",
                    "area_code": commune,
                    "latitude": 11.5,
                    "longitude": longitude + 0.005,
                }
            )
    for area in areas:
        response = await client.post("/api/v1/areas", json=area)
        assert response.status_code == 201, response.text
    for cluster in clusters:
        response = await client.post("/api/v1/clusters", json=cluster)
        assert response.status_code == 201, response.text
    # The caller's client: it trusts the test's CA when the stack serves https.
    provisioning = await client.get("/api/v1/clusters/provisioning")
    assert provisioning.status_code == 200, provisioning.text
    return SmallProvince(specs_from_json(provisioning.json()))


async def add_eboard(stack: Stack, commune: str, code: str) -> DeviceSpec:
    """An e-board registered in `commune`, and its device spec for a fleet."""
    response = await stack.client.post(
        "/api/v1/clusters",
        json={"code": code, "name": f"Bảng tin {commune}", "area_code": commune, "kind": "eboard"},
    )
    assert response.status_code == 201, response.text
    provisioning = (await stack.client.get("/api/v1/clusters/provisioning")).json()
    return next(s for s in specs_from_json(provisioning) if s.code == code)
