"""The cluster register over HTTP: CRUD, subtree filter, paging, CSV import, provisioning."""

from __future__ import annotations

from tests.support import Stack
from wire import media_auth


async def _areas(stack: Stack) -> None:
    for body in (
        {"code": "70", "name": "Tỉnh Bình Phước", "level": "province"},
        {"code": "689", "name": "Thành phố Đồng Xoài", "level": "district", "parent_code": "70"},
        {"code": "25195", "name": "Phường Tân Phú", "level": "commune", "parent_code": "689"},
        {"code": "695", "name": "Huyện Đồng Phú", "level": "district", "parent_code": "70"},
    ):
        assert (await stack.client.post("/api/v1/areas", json=body)).status_code == 201


async def test_create_read_update_delete(stack: Stack) -> None:
    await _areas(stack)
    body = {
        "code": "25195-01",
        "name": "Cụm loa Tân Phú 1",
        "kind": "speaker_cluster",
        "area_code": "25195",
        "latitude": 11.53,
        "longitude": 106.89,
        "speakers": 3,
        "firmware": "1.4.2",
        "installed_on": "2021-06-01",
    }
    created = await stack.client.post("/api/v1/clusters", json=body)
    assert created.status_code == 201, created.text
    read = (await stack.client.get("/api/v1/clusters/25195-01")).json()
    assert read["speakers"] == 3 and read["area_code"] == "25195"
    assert read["online"] is False and read["last_seen_at"] is None

    moved = await stack.client.patch(
        "/api/v1/clusters/25195-01", json={"area_code": "695", "speakers": 4}
    )
    assert moved.status_code == 200
    assert moved.json()["area_code"] == "695" and moved.json()["speakers"] == 4
    assert moved.json()["firmware"] == "1.4.2", "a partial update kept the other fields"

    duplicate = await stack.client.post("/api/v1/clusters", json=body)
    assert duplicate.status_code == 409
    assert (await stack.client.delete("/api/v1/clusters/25195-01")).status_code == 204
    missing = await stack.client.get("/api/v1/clusters/25195-01")
    assert missing.status_code == 404 and "25195-01" in missing.json()["error"]


async def test_list_filters_by_subtree_and_pages(stack: Stack) -> None:
    await _areas(stack)
    for i in range(5):
        await stack.client.post(
            "/api/v1/clusters", json={"code": f"A-{i}", "name": "a", "area_code": "25195"}
        )
    await stack.client.post(
        "/api/v1/clusters", json={"code": "B-0", "name": "b", "area_code": "695", "kind": "eboard"}
    )
    under = (await stack.client.get("/api/v1/clusters", params={"area": "689"})).json()
    assert under["total"] == 5 and {c["code"] for c in under["items"]} == {
        f"A-{i}" for i in range(5)
    }
    page = (await stack.client.get("/api/v1/clusters", params={"limit": 2, "offset": 4})).json()
    assert page["total"] == 6 and [c["code"] for c in page["items"]] == ["A-4", "B-0"]
    boards = (await stack.client.get("/api/v1/clusters", params={"kind": "eboard"})).json()
    assert [c["code"] for c in boards["items"]] == ["B-0"]
    unknown = await stack.client.get("/api/v1/clusters", params={"area": "404404"})
    assert unknown.status_code == 404 and "404404" in unknown.json()["error"]
    too_many = await stack.client.get("/api/v1/clusters", params={"limit": 5000})
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["field"] == "query.limit"

    provisioning = {
        c["code"]: c for c in (await stack.client.get("/api/v1/clusters/provisioning")).json()
    }
    a0 = provisioning["A-0"]
    assert (a0["kind"], a0["areas"], a0["profile"]) == (
        "speaker_cluster",
        ["70", "689", "25195"],
        "mp3-mono-64k",
    )
    key = stack.settings.media_signing_key
    assert a0["media_key"] == media_auth.device_key(key, "A-0", "70/689/25195")
    assert a0["media_key"] != provisioning["B-0"]["media_key"], "each device its own key"


async def test_validation_names_the_field(stack: Stack) -> None:
    await _areas(stack)
    response = await stack.client.post(
        "/api/v1/clusters",
        json={"code": "X", "name": "x", "area_code": "25195", "latitude": 123, "kind": "radio"},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["detail"]} == {"latitude", "kind"}
    response = await stack.client.post(
        "/api/v1/clusters", json={"code": "X", "name": "x", "area_code": "nowhere"}
    )
    assert response.status_code == 404 and "nowhere" in response.json()["error"]


async def test_csv_import_keeps_good_rows_and_reports_bad_ones(stack: Stack) -> None:
    await _areas(stack)
    csv_text = (
        "code,name,kind,area_code,latitude,longitude,speakers,firmware,installed_on\n"
        "C-1,Cụm 1,speaker_cluster,25195,11.5,106.9,2,1.0,2021-01-01\n"
        "C-2,Cụm 2,eboard,695,,,0,,\n"
        "C-3,Cụm 3,speaker_cluster,99999,,,2,,\n"
        "C-4,Cụm 4,speaker_cluster,25195,95,,2,,\n"
        "C-5,Cụm 5,speaker_cluster,25195,,,two,,\n"
        "C-1,Cụm 1 mới,speaker_cluster,695,,,4,,\n"
    )
    response = await stack.client.post(
        "/api/v1/clusters/import", files={"file": ("c.csv", csv_text.encode("utf-8-sig"))}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["created"] == 2 and report["updated"] == 1
    assert {(e["row"], e["field"]) for e in report["errors"]} == {
        (4, "area_code"),
        (5, "latitude"),
        (6, "speakers"),
    }
    c1 = (await stack.client.get("/api/v1/clusters/C-1")).json()
    assert c1["name"] == "Cụm 1 mới" and c1["area_code"] == "695" and c1["speakers"] == 4
