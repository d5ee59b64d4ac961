"""What the access-list file cannot say: "this account may not join a shared subscription".

Mosquitto 2.0's `acl_file` grants every SUBSCRIBE (its check returns success for
subscriptions, a FIXME in security_default.c) and filters only delivery. A cluster account
that subscribed to `$share/<group>/bc/v1/cluster/+/ack` therefore joined the control
plane's group, was handed its share of every cluster's answers, and the delivery filter
then dropped them: with five such connections 7 of 40 acknowledgements reached the
control plane (issue 19). The broker's dynamic-security plugin can refuse a subscription.

It is layered, not a replacement: authentication stays in the password file and the
per-topic rules in the access list (devices/broker_auth.py), both re-read on SIGHUP. The
plugin is consulted first (Mosquitto calls plugins before its own files). It knows every
cluster account, without a password, under one role, `cluster`, that refuses `$share/#`
subscriptions and any `$CONTROL` traffic; everything that role does not mention falls
through to the files. An account it does not know falls through too, so the password file
only ever names accounts the plugin has confirmed: a new cluster can sign in only after
the broker holds it under the role (fail-closed; revocation never waits for the plugin).

The plugin keeps its state in a JSON file that it reads once, at start, and rewrites
after every change; at run time it is changed only by commands on
`$CONTROL/dynamic-security/v1`, which the control plane's account may send. Before the
broker's first start the control plane writes that file (`bootstrap`), with the register's
clusters already in it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.settings import Settings
from wire.mqtt_lite import LiteClient, MqttLiteError

log = logging.getLogger(__name__)

COMMAND_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{COMMAND_TOPIC}/response"
CLUSTER_ROLE = "cluster"
ADMIN_ROLE = "control-plane"
TIMEOUT_S = 5.0

# Refusals for cluster accounts; anything else is the access-list file's to decide.
CLUSTER_ACLS: list[dict[str, Any]] = [
    {"acltype": "subscribePattern", "topic": "$share/#", "allow": False},
    {"acltype": "subscribePattern", "topic": "$CONTROL/#", "allow": False},
    {"acltype": "publishClientSend", "topic": "$CONTROL/#", "allow": False},
]
ADMIN_ACLS: list[dict[str, Any]] = [
    {"acltype": "publishClientSend", "topic": f"{COMMAND_TOPIC}/#", "allow": True},
    {"acltype": "publishClientSend", "topic": COMMAND_TOPIC, "allow": True},
    {"acltype": "publishClientReceive", "topic": RESPONSE_TOPIC, "allow": True},
    {"acltype": "subscribeLiteral", "topic": RESPONSE_TOPIC, "allow": True},
]
# Default "deny" means "not decided here": the plugin defers and the files decide.
DEFAULT_ACCESS = [
    {"acltype": kind, "allow": False}
    for kind in ("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe")
]


class DynsecError(Exception):
    """The broker's dynamic-security plugin did not do what was asked."""


def bootstrap(control_user: str, clusters: Iterable[str]) -> dict[str, Any]:
    """The plugin's file before the broker's first start."""
    return {
        "defaultACLAccess": DEFAULT_ACCESS,
        "clients": [
            {"username": control_user, "roles": [{"rolename": ADMIN_ROLE}]},
            *(
                {"username": code, "roles": [{"rolename": CLUSTER_ROLE}]}
                for code in sorted(clusters)
            ),
        ],
        "groups": [],
        "roles": [
            {"rolename": ADMIN_ROLE, "acls": ADMIN_ACLS},
            {"rolename": CLUSTER_ROLE, "acls": CLUSTER_ACLS},
        ],
    }


def write_bootstrap(path: Path, control_user: str, clusters: Iterable[str]) -> set[str]:
    """Write the plugin's file if there is none (never over the broker's own); the
    cluster accounts it holds."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(bootstrap(control_user, clusters), indent=2))
        os.chmod(tmp, 0o660)  # the broker rewrites it after every change
        os.replace(tmp, path)
    return clusters_in_file(path)


def clusters_in_file(path: Path) -> set[str]:
    """The accounts the plugin's file holds under the cluster role."""
    data = json.loads(path.read_text())
    return {
        client["username"]
        for client in data.get("clients", [])
        if any(r.get("rolename") == CLUSTER_ROLE for r in client.get("roles", []))
    }


class Admin:
    """One short connection that sends the plugin commands and reads its answers; the
    answers come back to this connection only."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._answers: asyncio.Queue[bytes] = asyncio.Queue()
        self._client = LiteClient(
            f"{settings.mqtt_username or 'control-plane'}-dynsec-{secrets.token_hex(4)}",
            lambda _topic, payload: self._answers.put_nowait(payload),
            username=settings.mqtt_username,
            password=settings.mqtt_password,
        )

    async def __aenter__(self) -> Admin:
        s = self._settings
        await self._client.connect(s.mqtt_host, s.mqtt_port, tls=s.mqtt_tls(), timeout=TIMEOUT_S)
        refused = await self._client.subscribe([RESPONSE_TOPIC], timeout=TIMEOUT_S)
        if refused:
            self._client.drop()
            raise DynsecError(
                "the broker refused the plugin's answers: no dynamic-security plugin, "
                f"or {s.mqtt_username!r} is not its administrator"
            )
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.disconnect()

    async def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send the commands in one message; their answers, in order."""
        if not commands:
            return []
        self._client.publish(COMMAND_TOPIC, json.dumps({"commands": commands}).encode())
        payload = await asyncio.wait_for(self._answers.get(), TIMEOUT_S)
        answers: list[dict[str, Any]] = json.loads(payload)["responses"]
        return answers

    async def cluster_accounts(self) -> dict[str, bool]:
        """Every account the plugin knows: whether it holds the cluster role."""
        (answer,) = await self.run([{"command": "listClients", "verbose": True, "count": -1}])
        if "error" in answer:
            raise DynsecError(f"listClients: {answer['error']}")
        return {
            c["username"]: any(r["rolename"] == CLUSTER_ROLE for r in c.get("roles", []))
            for c in answer["data"]["clients"]
        }

    async def ensure_role(self) -> None:
        """The cluster role with our rules (an existing role keeps rules an operator added;
        ours are added again, "already exists" is fine). The plugin rewrites its whole
        file after each command, so this runs when a process starts, not on every sync."""
        await self.run(
            [
                {"command": "createRole", "rolename": CLUSTER_ROLE, "acls": CLUSTER_ACLS},
                *(
                    {"command": "addRoleACL", "rolename": CLUSTER_ROLE, **acl}
                    for acl in CLUSTER_ACLS
                ),
            ]
        )

    async def protect(self, codes: set[str], control_user: str) -> set[str]:
        """Hold every given account under the cluster role; the accounts that are."""
        known = await self.cluster_accounts()
        held = {code for code, as_cluster in known.items() if as_cluster}
        commands: list[dict[str, Any]] = []
        for code in sorted(codes - held - {control_user}):
            if code not in known:
                role = [{"rolename": CLUSTER_ROLE}]
                commands.append({"command": "createClient", "username": code, "roles": role})
            else:
                commands.append(
                    {"command": "addClientRole", "username": code, "rolename": CLUSTER_ROLE}
                )
        for command, answer in zip(commands, await self.run(commands), strict=True):
            if "error" in answer:
                log.error(
                    "broker: %s %s: %s", command["command"], command["username"], answer["error"]
                )
            else:
                held.add(command["username"])
        return held

    async def forget(self, codes: set[str]) -> None:
        """Remove accounts that no cluster of the register has any more."""
        commands = [{"command": "deleteClient", "username": code} for code in sorted(codes)]
        for command, answer in zip(commands, await self.run(commands), strict=True):
            if "error" in answer:
                log.warning("broker: deleteClient %s: %s", command["username"], answer["error"])


__all__ = [
    "Admin",
    "DynsecError",
    "MqttLiteError",
    "bootstrap",
    "clusters_in_file",
    "write_bootstrap",
]
