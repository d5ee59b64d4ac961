"""The area tree over HTTP: CRUD, subtree listing, moves, CSV import, clear errors."""

from __future__ import annotations

from tests.support import Stack


async def _tree(stack: Stack) -> None:
    for body in (
        {"code": "70", "name": "Tỉnh Bình Phước", "level": "province"},
        {"code": "689", "name": "Thành phố Đồng Xoài", "level": "district", "parent_code": "70"},
        {"code": "25195", "name": "Phường Tân Phú", "level": "commune", "parent_code": "689"},
        {"code": "25195-1", "name": "Khu phố 1", "level": "hamlet", "parent_code": "25195"},
        {"code": "695", "name": "Huyện Đồng Phú", "level": "district", "parent_code": "70"},
    ):
        response = await stack.client.post("/api/v1/areas", json=body)
        assert response.status_code == 201, response.text


async def test_create_read_and_list_a_subtree(stack: Stack) -> None:
    await _tree(stack)
    hamlet = (await stack.client.get("/api/v1/areas/25195-1")).json()
    assert hamlet["path"] == "/70/689/25195/25195-1/"
    assert hamlet["depth"] == 3
    assert hamlet["parent_code"] == "25195"

    under = (await stack.client.get("/api/v1/areas", params={"under": "689"})).json()
    assert [a["code"] for a in under["items"]] == ["689", "25195", "25195-1"]
    children = (await stack.client.get("/api/v1/areas", params={"parent": "70"})).json()
    assert {a["code"] for a in children["items"]} == {"689", "695"}

    page = (await stack.client.get("/api/v1/areas", params={"limit": 2, "offset": 2})).json()
    assert page["total"] == 5
    assert len(page["items"]) == 2


async def test_moving_an_area_moves_its_subtree(stack: Stack) -> None:
    """The 2025 reform removed districts: communes move straight under the province."""
    await _tree(stack)
    response = await stack.client.patch("/api/v1/areas/25195", json={"parent_code": "70"})
    assert response.status_code == 200
    assert response.json()["path"] == "/70/25195/"
    hamlet = (await stack.client.get("/api/v1/areas/25195-1")).json()
    assert hamlet["path"] == "/70/25195/25195-1/"
    assert hamlet["depth"] == 2


async def test_an_area_cannot_move_under_its_own_descendant(stack: Stack) -> None:
    await _tree(stack)
    response = await stack.client.patch("/api/v1/areas/689", json={"parent_code": "25195-1"})
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "parent_code"


async def test_unknown_area_is_404_naming_it(stack: Stack) -> None:
    response = await stack.client.get("/api/v1/areas/99999")
    assert response.status_code == 404
    assert "99999" in response.json()["error"]
    response = await stack.client.post(
        "/api/v1/areas", json={"code": "1", "name": "x", "level": "commune", "parent_code": "nope"}
    )
    assert response.status_code == 404
    assert "nope" in response.json()["error"]


async def test_validation_errors_name_the_field(stack: Stack) -> None:
    response = await stack.client.post("/api/v1/areas", json={"code": "bad code!", "name": "x"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert {"code", "level"} <= fields


async def test_delete_refuses_an_area_with_children_or_clusters(stack: Stack) -> None:
    await _tree(stack)
    assert (await stack.client.delete("/api/v1/areas/689")).status_code == 409
    await stack.client.post(
        "/api/v1/clusters", json={"code": "C1", "name": "Cụm 1", "area_code": "695"}
    )
    assert (await stack.client.delete("/api/v1/areas/695")).status_code == 409
    assert (await stack.client.delete("/api/v1/areas/25195-1")).status_code == 204
    assert (await stack.client.get("/api/v1/areas/25195-1")).status_code == 404


async def test_csv_import_reports_each_bad_row_and_keeps_the_good(stack: Stack) -> None:
    csv_text = (
        "code,name,level,parent_code\n"
        "70,Tỉnh Bình Phước,province,\n"
        "689,Thành phố Đồng Xoài,district,70\n"
        "25195,Phường Tân Phú,commune,689\n"
        "bad code,Nowhere,commune,689\n"
        "25196,Orphan,commune,12345\n"
        "25197,,commune,689\n"
    )
    response = await stack.client.post(
        "/api/v1/areas/import", files={"file": ("areas.csv", csv_text.encode(), "text/csv")}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["created"] == 3
    assert {(e["row"], e["field"]) for e in report["errors"]} == {
        (5, "code"),
        (6, "parent_code"),
        (7, "name"),
    }
    total = (await stack.client.get("/api/v1/areas")).json()["total"]
    assert total == 3

    again = await stack.client.post(
        "/api/v1/areas/import",
        files={"file": ("a.csv", b"code,name,level,parent_code\n689,TP Dong Xoai,district,70\n")},
    )
    assert again.json()["updated"] == 1
    assert (await stack.client.get("/api/v1/areas/689")).json()["name"] == "TP Dong Xoai"


async def test_csv_without_required_columns_is_refused(stack: Stack) -> None:
    response = await stack.client.post(
        "/api/v1/areas/import", files={"file": ("a.csv", b"code,title\n1,x\n")}
    )
    assert response.status_code == 422
    assert "name" in response.json()["error"]
