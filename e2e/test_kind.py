"""The end-to-end suite on kind: the shared scenarios, then deleting the IMCluster. Run with e2e/run.sh.

The tests run in file order on one IMCluster (the last one deletes it).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from e2e.kindenv import ENTRY_URL, IMCLUSTER, KindEnvironment, kubectl, kubectl_json
from tests.support import scenarios

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CHILD_KINDS = ("deployments", "services", "configmaps", "secrets", "horizontalpodautoscalers",
               "poddisruptionbudgets", "networkpolicies", "pods")


async def test_the_imcluster_is_ready_and_reports_its_gateways(env: KindEnvironment) -> None:
    body = await kubectl_json("get", "imcluster", IMCLUSTER)
    conditions = {c["type"]: c["status"] for c in body["status"]["conditions"]}
    assert conditions.get("Ready") == "True", body["status"]
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    assert len(await env.gateways()) == body["spec"]["gateway"]["replicas"]


async def test_users_register_log_in_and_chat_privately(env: KindEnvironment) -> None:
    await scenarios.accounts_and_private_chat(env)


async def test_a_group_reaches_every_member_once(env: KindEnvironment) -> None:
    await scenarios.group_chat(env)


async def test_new_connections_spread_over_the_gateways_after_scaling_up(env: KindEnvironment) -> None:
    await scenarios.connections_spread_after_scaling(env, replicas=3, entry=ENTRY_URL)


async def test_clients_of_a_deleted_gateway_pod_reconnect_and_lose_nothing(env: KindEnvironment) -> None:
    await scenarios.gateway_dies_mid_conversation(env)
    await env.wait_for_gateways(3)  # the Deployment replaced the pod


async def test_a_spec_change_rolls_the_gateways_without_dropping_a_message(env: KindEnvironment) -> None:
    await scenarios.rolling_update_without_loss(env)


async def test_deleting_the_imcluster_removes_every_child(env: KindEnvironment) -> None:
    body = await kubectl_json("get", "imcluster", IMCLUSTER)
    uid = body["metadata"]["uid"]
    children = []
    for kind in CHILD_KINDS:
        for item in (await kubectl_json("get", kind))["items"]:
            owners = item["metadata"].get("ownerReferences", [])
            if any(o["uid"] == uid for o in owners):
                children.append(f"{kind}/{item['metadata']['name']}")
    for expected in (f"deployments/{IMCLUSTER}-gateway", f"deployments/{IMCLUSTER}-logic",
                     f"services/{IMCLUSTER}-gateway", f"services/{IMCLUSTER}-logic", f"configmaps/{IMCLUSTER}-config"):
        assert expected in children, f"{expected} is not owned by the IMCluster: {children}"

    await kubectl("delete", "imcluster", IMCLUSTER, "--wait=true", "--timeout=120s", timeout=130)
    deadline = time.monotonic() + 180
    left: list[str] = children
    while time.monotonic() < deadline:
        left = []
        for name in children:
            if await kubectl("get", name, "--ignore-not-found", "-o", "name", check=False):
                left.append(name)
        pods = await kubectl("get", "pods", "-l", f"app.kubernetes.io/instance={IMCLUSTER}", "-o", "name")
        left += pods.split()
        if not left:
            break
        await asyncio.sleep(2)
    assert not left, f"still there after the IMCluster was deleted: {left}"
    # What the user made stays: the bindings' Secrets are not the operator's to delete.
    for secret in ("chat-mysql", "chat-redis", "chat-rabbitmq"):
        assert await kubectl("get", "secret", secret, "-o", "name")
