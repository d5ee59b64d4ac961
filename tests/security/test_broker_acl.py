"""Per-cluster broker credentials and access lists, against a real Mosquitto running with
the files the control plane generates from the register."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from core.mqtt import Outgoing
from devstack.broker import Broker
from tests.factories import small_province
from tests.security.broker import Device, connects
from tests.support import Stack, eventually
from wire import protocol
from wire.mqtt_lite import LiteClient, MqttLiteError


async def test_a_cluster_reads_and_writes_only_its_own_topics(
    stack_factory: Callable[..., Awaitable[Stack]],
    locked_broker: tuple[Broker, dict[str, Any]],
) -> None:
    broker, files = locked_broker
    stack = await stack_factory(mqtt_port=broker.port, **files)
    assert stack.runtime.mqtt is not None and stack.runtime.mqtt.connected  # its own account
    specs = (await small_province(stack)).specs
    a, b = specs[0], next(s for s in specs if s.areas[2] != specs[0].areas[2])
    passwords = {}
    for spec in (a, b):
        issued = await stack.client.post(f"/api/v1/clusters/{spec.code}/credentials")
        assert issued.status_code == 201 and issued.json()["username"] == spec.code
        passwords[spec.code] = issued.json()["password"]
    acl = files["broker_acl_file"].read_text()
    assert f"user {a.code}\n" in acl and f"topic read bc/v1/area/{a.areas[2]}/cmd" in acl
    assert passwords[a.code] not in files["broker_password_file"].read_text()

    mine, theirs = (
        Device(broker, a.code, passwords[a.code]),
        Device(broker, b.code, passwords[b.code]),
    )
    # The broker re-reads its files on the signal: wait until it knows them.
    await eventually(lambda: connects(mine), bool, what="cluster A admitted")
    await theirs.connect()
    await theirs.client.subscribe([protocol.cluster_command_topic(b.code)])
    await mine.client.subscribe(
        [
            protocol.cluster_command_topic(a.code),
            protocol.cluster_command_topic(b.code),  # not its own: denied
            protocol.area_command_topic(b.areas[2]),  # not its commune: denied
            protocol.ack_topic(b.code),  # another cluster's answers: denied
        ]
    )

    # 1. Reading another's commands: the control plane sends B a command, then A one.
    dispatcher = stack.runtime.require_dispatcher()

    await dispatcher.publish(  # raw bytes: what reaches whom is the point, not content
        [
            Outgoing(protocol.cluster_command_topic(b.code), b'{"for":"B"}'),
            Outgoing(protocol.area_command_topic(b.areas[2]), b'{"for":"B area"}'),
            Outgoing(protocol.cluster_command_topic(a.code), b'{"for":"A"}'),
        ]
    )
    await eventually(
        lambda: _value(mine.got),
        lambda got: any(p == b'{"for":"A"}' for _, p in got),
        what="A's own command",
    )
    await eventually(lambda: _value(theirs.got), bool, what="B's command")
    assert [p for _, p in mine.got] == [b'{"for":"A"}']

    # 2. Writing as another: a forged "played" on B's topic, then junk on A's own. The
    # junk reaching the control plane proves the forgery would have, had it passed.
    forged = protocol.Ack(
        cmd="x",
        broadcast="y",
        cluster=b.code,
        stage=protocol.AckStage.PLAYED,
        at=stack.runtime.clock.now(),
    ).to_json()
    mine.client.publish(protocol.ack_topic(b.code), forged)
    mine.client.publish(protocol.status_topic(b.code), b'{"v":1,"cluster":"x","online":false}')
    mine.client.publish(protocol.ack_topic(a.code), b"not json")
    ingest = await eventually(
        lambda: _ingest(stack),
        lambda s: any(r["topic"] == protocol.ack_topic(a.code) for r in s["recent_rejects"]),
        what="A's junk refused by the control plane",
    )
    assert not any(b.code in r["topic"] for r in ingest["recent_rejects"])

    # 3. Revoked: A can no longer connect; B still can; nobody connects anonymously.
    revoked = await stack.client.delete(f"/api/v1/clusters/{a.code}/credentials")
    assert revoked.status_code == 204
    assert f"user {a.code}\n" not in files["broker_acl_file"].read_text()
    await eventually(
        lambda: connects(Device(broker, a.code, passwords[a.code])),
        lambda ok: not ok,
        what="A's revoked credentials refused",
    )
    assert await connects(Device(broker, b.code, passwords[b.code]))
    assert not await connects(Device(broker, b.code, "a guess"))
    anonymous = LiteClient("anyone", lambda t, p: None)
    with pytest.raises(MqttLiteError):
        await anonymous.connect(broker.host, broker.port)
    for device in (mine, theirs):
        device.client.drop()


async def _ingest(stack: Stack) -> dict[str, Any]:
    data: dict[str, Any] = (await stack.client.get("/api/v1/ingest")).json()
    return data


async def _value(items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return list(items)


async def test_a_clusters_credentials_cannot_knock_another_cluster_off(
    stack_factory: Callable[..., Awaitable[Stack]],
    locked_broker: tuple[Broker, dict[str, Any]],
) -> None:
    """Issue 18, finding 7: cluster A's account connecting with cluster B's client id
    used to disconnect the real B, again and again. On the clusters' listener the client
    id is the account name, so A only ever replaces its own connection."""
    broker, files = locked_broker
    stack = await stack_factory(mqtt_port=broker.port, **files)
    await small_province(stack)
    a, b = "25216-01", "25231-01"
    passwords = {}
    for code in (a, b):
        issued = await stack.client.post(f"/api/v1/clusters/{code}/credentials")
        passwords[code] = issued.json()["password"]
    real_b = Device(broker, b, passwords[b])
    await eventually(lambda: connects(real_b), bool, what="B admitted")
    for _ in range(3):
        thief = Device(broker, a, passwords[a], client_id=b)  # A's account, B's client id
        await thief.connect()
        # The broker has handled the thief's CONNECT once it answers a subscription.
        await thief.client.subscribe([protocol.cluster_command_topic(a)])
        assert thief.client.connected and real_b.client.connected
        thief.client.drop()
    # The same account twice is still one connection: the newer replaces the older.
    twin = Device(broker, b, passwords[b], client_id="anything")
    await twin.connect()
    await eventually(
        lambda: _value([("", b"x")] if real_b.client.connected else []),
        lambda got: not got,
        what="B's older connection replaced by its own newer one",
    )
    twin.client.drop()


def test_the_shipped_brokers_bind_client_ids_to_accounts_on_the_clusters_listener() -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    for name in ("mosquitto.production.conf", "mosquitto.edge.conf"):
        listeners: dict[str, list[str]] = {}
        current = ""
        for line in (deploy / name).read_text().splitlines():
            words = line.split()
            if words[:1] == ["listener"]:
                current = words[1]
                listeners[current] = []
            elif words and current and not line.startswith("#"):
                listeners[current].append(words[0])
        assert "use_username_as_clientid" in listeners["8883"], name


async def test_a_cluster_account_cannot_take_a_share_of_the_control_planes_messages(
    stack_factory: Callable[..., Awaitable[Stack]],
    locked_broker: tuple[Broker, dict[str, Any]],
) -> None:
    """Issue 19: Mosquitto's access list grants a cluster account
    `$share/control/bc/v1/cluster/+/ack`; a member of the control plane's group took its
    share of every cluster's answers, which the access list then dropped (7 of 40 reached
    the control plane with five such connections). The broker's dynamic-security plugin
    now refuses the subscription, whatever the group; the group's name is also derived
    from the secret, so a guess alone names a group of its own."""
    broker, files = locked_broker
    stack = await stack_factory(mqtt_port=broker.port, mqtt_share_group="", **files)
    assert stack.settings.share_group.startswith("control-")
    await small_province(stack)
    codes = ["25216-01", "25195-01", "25231-01"]
    passwords = {}
    for code in codes:
        issued = await stack.client.post(f"/api/v1/clusters/{code}/credentials")
        passwords[code] = issued.json()["password"]
    sender, *thieves = (Device(broker, c, passwords[c]) for c in codes)
    await eventually(lambda: connects(sender), bool, what="cluster admitted")
    # One thief knows the real group's name (a leaked secret), one guesses.
    for thief, group in zip(thieves, (stack.settings.share_group, "control"), strict=True):
        await thief.connect()
        wanted = [protocol.shared(group, f) for f in (protocol.ACK_FILTER, protocol.STATUS_FILTER)]
        assert await thief.client.subscribe(wanted) == wanted  # both refused
        # What a cluster may subscribe to, it still may.
        assert await thief.client.subscribe([protocol.cluster_command_topic(thief.code)]) == []
    before = stack.runtime.stats.counts["malformed"]
    for n in range(40):  # answers the control plane refuses, so it counts every one
        sender.client.publish(protocol.ack_topic(sender.client.client_id), f"not json {n}".encode())
    await eventually(
        lambda: _value_count(stack, "malformed"),
        lambda seen: seen - before >= 40,
        what="all 40 answers at the control plane",
    )
    assert all(not t.got for t in thieves)
    for device in (sender, *thieves):
        device.client.drop()


async def _value_count(stack: Stack, kind: str) -> int:
    return stack.runtime.stats.counts[kind]
