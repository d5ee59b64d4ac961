"""The broker's dynamic-security plugin and the password file together (issue 19, item 3):
the password file names only the cluster accounts the plugin holds, so no account can
sign in before the broker refuses it the control plane's shared subscription."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from core.database import session_scope
from devices import broker_auth, broker_dynsec, service
from devices.schemas import ClusterCreate
from devstack.broker import Broker, free_port
from tests.factories import small_province
from tests.security.broker import CONTROL, Device, connects
from tests.support import Stack


def _users(password_file: Path) -> set[str]:
    return {line.split(":", 1)[0] for line in password_file.read_text().splitlines()}


async def _issue(stack: Stack, *codes: str) -> dict[str, str]:
    passwords = {}
    for code in codes:
        issued = await stack.client.post(f"/api/v1/clusters/{code}/credentials")
        assert issued.status_code == 201
        passwords[code] = issued.json()["password"]
    return passwords


async def _sync(stack: Stack, **overrides: Any) -> bool:
    settings = stack.settings.model_copy(update=overrides)
    async with session_scope(stack.runtime.sessions) as session:
        return await broker_auth.sync(session, settings)


async def test_the_plugin_holds_every_account_the_password_file_names(
    stack_factory: Callable[..., Awaitable[Stack]],
    locked_broker: tuple[Broker, dict[str, Any]],
) -> None:
    broker, files = locked_broker
    stack = await stack_factory(mqtt_port=broker.port, **files)
    await small_province(stack)  # every cluster registered with an account
    passwords = await _issue(stack, "25216-01")
    async with broker_dynsec.Admin(stack.settings) as admin:
        held = await admin.cluster_accounts()
    clusters = {c for c, as_cluster in held.items() if as_cluster}
    assert {"25216-01", "25231-01"} <= clusters
    assert held[CONTROL] is False  # the control plane is the plugin's administrator
    assert _users(files["broker_password_file"]) == clusters | {CONTROL}

    # Deleted from the register: out of the password file, then out of the plugin.
    assert (await stack.client.delete("/api/v1/clusters/25231-01")).status_code == 204
    async with broker_dynsec.Admin(stack.settings) as admin:
        held = await admin.cluster_accounts()
    assert "25231-01" not in held
    assert _users(files["broker_password_file"]) == clusters - {"25231-01"} | {CONTROL}
    assert await connects(Device(broker, "25216-01", passwords["25216-01"]))


async def test_without_the_plugin_no_new_account_is_admitted_and_revocations_still_apply(
    stack_factory: Callable[..., Awaitable[Stack]],
    locked_broker: tuple[Broker, dict[str, Any]],
) -> None:
    """Fail closed: while the plugin cannot be asked, a new account waits outside the
    password file (it could otherwise join the shared subscription unrefused)."""
    broker, files = locked_broker
    stack = await stack_factory(mqtt_port=broker.port, **files)
    await small_province(stack)
    before = _users(files["broker_password_file"])
    assert "25216-01" in before

    async with stack.runtime.writing() as session:
        new = ClusterCreate(code="25231-77", name="Cụm mới", area_code="25231")
        await service.create(session=session, clock=stack.runtime.clock, data=new)
        await service.set_credentials(session=session, code="25216-01", issue=False)
    unreachable = {"mqtt_port": free_port()}  # nothing listens: the broker is away
    assert await _sync(stack, **unreachable)
    # Revoked at once; the new account waits.
    assert _users(files["broker_password_file"]) == before - {"25216-01"}

    # The broker back: the next change admits the waiting account.
    await _sync(stack)
    assert _users(files["broker_password_file"]) == before - {"25216-01"} | {"25231-77"}


async def test_before_the_brokers_first_start_its_plugin_file_comes_from_the_register(
    stack_factory: Callable[..., Awaitable[Stack]],
    locked_broker: tuple[Broker, dict[str, Any]],
    tmp_path: Path,
) -> None:
    """`broadcast broker sync` before the broker runs (docker-compose's broker-files): the
    plugin's file is written with the register's accounts, which are then admitted; an
    existing file is the broker's and is never overwritten."""
    broker, files = locked_broker
    stack = await stack_factory(mqtt_port=broker.port, **files)
    await small_province(stack)  # every cluster registered with an account
    accounts = _users(files["broker_password_file"]) - {CONTROL}
    fresh = {
        "broker_password_file": tmp_path / "new" / "passwd",
        "broker_acl_file": tmp_path / "new" / "acl",
        "broker_dynsec_file": tmp_path / "new" / "dynamic-security.json",
        "broker_pid_file": tmp_path / "new" / "mosquitto.pid",  # no broker yet
        "mqtt_port": free_port(),
    }
    await _sync(stack, **fresh)
    plugin_file: Path = fresh["broker_dynsec_file"]
    assert broker_dynsec.clusters_in_file(plugin_file) == accounts
    assert _users(fresh["broker_password_file"]) == accounts | {CONTROL}
    assert oct(plugin_file.stat().st_mode & 0o777) == "0o660"  # the broker rewrites it

    # The broker running (its pid alive) and its file there: the file is the broker's.
    assert broker.process is not None  # a live process; the signal only makes it re-read
    fresh["broker_pid_file"].write_text(str(broker.process.pid))
    before = plugin_file.read_text()
    created = await stack.client.post(
        "/api/v1/clusters", json={"code": "25231-77", "name": "Cụm mới", "area_code": "25231"}
    )  # admitted by the running broker; then offered to this one, unreachable
    assert created.status_code == 201, created.text
    await _sync(stack, **fresh)
    assert plugin_file.read_text() == before
    assert "25231-77" not in _users(fresh["broker_password_file"])
