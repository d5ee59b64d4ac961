"""A device fetches its own provisioning with its broker account (docs/protocol.md 10):
the same as the installer's listing says of it, plus where to connect and how often to
speak; nobody else's, and nothing without the right password."""

from __future__ import annotations

import httpx

from tests.factories import small_province
from tests.support import Stack

CODE = "25216-05"


async def registered(stack: Stack) -> str:
    """A new cluster's broker password (given once, in the registration's answer)."""
    response = await stack.client.post(
        "/api/v1/clusters",
        json={"code": CODE, "name": "Cụm loa 5", "area_code": "25216", "speakers": 2},
    )
    assert response.status_code == 201, response.text
    password: str = response.json()["mqtt"]["password"]
    return password


async def test_a_device_fetches_its_own_provisioning_with_its_broker_account(stack: Stack) -> None:
    await small_province(stack)
    password = await registered(stack)
    listing = (await stack.client.get("/api/v1/clusters/provisioning?area=25216")).json()
    installer_view = next(c for c in listing if c["code"] == CODE)

    # The device's own request carries no person's sign-in, only its broker account.
    async with httpx.AsyncClient(base_url=str(stack.client.base_url)) as device:
        response = await device.get(f"/api/v1/clusters/{CODE}/provisioning", auth=(CODE, password))
    assert response.status_code == 200, response.text
    own = response.json()
    assert {k: own[k] for k in installer_view} == installer_view
    assert own["areas"] == ["70", "689", "25216"]
    settings = stack.settings
    assert own["broker"] == {
        "url": f"mqtt://{settings.mqtt_host}:{settings.mqtt_port}",
        "ca_pem": None,
    }
    assert (own["heartbeat_s"], own["offline_after_missed"]) == (
        settings.heartbeat_s,
        settings.offline_after_missed,
    )


async def test_wrong_password_another_code_unknown_code_or_none_is_refused_alike(
    stack: Stack,
) -> None:
    await small_province(stack)
    password = await registered(stack)
    async with httpx.AsyncClient(base_url=str(stack.client.base_url)) as device:
        attempts = [
            (CODE, (CODE, password + "x")),  # wrong password
            ("25216-01", (CODE, password)),  # right account, another device's path
            ("25216-77", ("25216-77", password)),  # nobody
            (CODE, None),  # no credentials
        ]
        for path_code, auth in attempts:
            response = await device.get(f"/api/v1/clusters/{path_code}/provisioning", auth=auth)
            assert response.status_code == 401, (path_code, response.text)
            assert "media_key" not in response.text
        bearer = await device.get(
            f"/api/v1/clusters/{CODE}/provisioning", headers={"authorization": "Bearer x"}
        )
        assert bearer.status_code == 401
