"""The `im-operator` process against kmock, with a resync period far beyond the test: whatever changes
here within seconds was driven by a watch, not by the timer.

    two replicas with peering: only the leader acts, the other takes over when it goes
    a Secret rotation rolls the pods that read it (and only those)
    conditions follow the child Deployments and HPAs at once
    only labelled Secrets and children are watched
    the operator's metrics count reconciliations
"""

from __future__ import annotations

import asyncio
import base64
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock as kmocklib
import pytest

from tests.im_operator.conftest import Api, register
from tests.support.processes import ManagedProcess, free_port, port_open

SECRET_HASH = "imcluster.io/secret-hash"
WATCH_SECONDS = 15.0
"""Generous for a loaded 2-core box; the resync period is an hour."""


def operator_process(kubeconfig: Path, log: Path, *args: str) -> tuple[ManagedProcess, int]:
    port = free_port()
    return ManagedProcess(
        "im-operator", [sys.executable, "-m", "im_operator", "--liveness=", f"--metrics-port={port}", *args],
        log, ready=port_open(port),
        env={"KUBECONFIG": str(kubeconfig), "IM_OPERATOR_RESYNC_SECONDS": "3600",
             "IM_OPERATOR_RESYNC_INITIAL_DELAY_SECONDS": "3600"}), port


@pytest.fixture
async def process_api(kmock: Any, kubeconfig: Path, tmp_path: Path) -> AsyncIterator[tuple[Api, int]]:
    register(kmock)
    operator, port = operator_process(kubeconfig, tmp_path / "operator.log")
    await asyncio.to_thread(operator.start)  # the loop must keep serving kmock meanwhile
    try:
        yield Api(kmock), port
    finally:
        code = await asyncio.to_thread(operator.stop)
        assert code == 0, operator.log()


async def test_with_peering_only_the_leader_acts_and_a_peer_takes_over(
        kmock: Any, kubeconfig: Path, tmp_path: Path, make_body: Any, eventually: Any) -> None:
    register(kmock)
    kmock.resources["kopf.dev/v1/clusterkopfpeerings"] = kmock.ResourceInfo(
        kind="ClusterKopfPeering", namespaced=False,
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"})
    response = await kmock.post("/apis/kopf.dev/v1/clusterkopfpeerings", json={
        "apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "imcluster"}})
    assert response.status < 300
    api = Api(kmock)
    await api.backing_secrets()
    low, low_port = operator_process(kubeconfig, tmp_path / "low.log", "--peering=imcluster", "--priority=10")
    high, high_port = operator_process(kubeconfig, tmp_path / "high.log", "--peering=imcluster", "--priority=20")
    await asyncio.to_thread(low.start)
    try:
        await asyncio.to_thread(high.start)
        await eventually(lambda: "Pausing operations in favour of" in low.log(), timeout=WATCH_SECONDS)

        await api.create(make_body("chat"))
        await eventually(lambda: api.get("Deployment", "chat-gateway"), timeout=WATCH_SECONDS)
        await eventually(lambda: reconciles(high_port) > 0, timeout=WATCH_SECONDS)
        assert reconciles(low_port) == 0, "the waiting replica acted"

        assert await asyncio.to_thread(high.stop) == 0  # leaves the peering: the other resumes at once
        await eventually(lambda: "Resuming operations" in low.log(), timeout=WATCH_SECONDS)
        await api.create(make_body("other"))
        await eventually(lambda: api.get("Deployment", "other-gateway"), timeout=WATCH_SECONDS)
        assert reconciles(low_port) > 0
    finally:
        for process in (high, low):
            if process.running:
                await asyncio.to_thread(process.stop)


def metrics(port: int) -> str:
    # A blocking read is fine here: the operator's metrics are served by its own process.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        return str(response.read().decode())


def reconciles(port: int) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics(port).splitlines()
               if line.startswith("im_operator_reconciles_total{"))


def template_annotations(api: Api, name: str) -> dict[str, str]:
    found: dict[str, str] = api.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
    return found


async def test_a_secret_rotation_rolls_exactly_the_pods_that_read_it(
        process_api: tuple[Api, int], make_body: Any, eventually: Any) -> None:
    api, _ = process_api
    await api.backing_secrets()
    await api.create(make_body())
    await eventually(lambda: api.get("Deployment", "chat-logic") and api.get("Deployment", "chat-gateway"),
                     timeout=WATCH_SECONDS)
    before = {role: template_annotations(api, f"chat-{role}")[SECRET_HASH] for role in ("gateway", "logic")}
    assert api.get("Secret", "chat-mysql")["metadata"]["labels"]["imcluster.io/watch"] == "true"

    new_url = base64.b64encode(b"mysql://im:rotated@mysql:3306/im").decode()
    await api.patch("Secret", "chat-mysql", {"data": {"url": new_url}})
    await eventually(lambda: template_annotations(api, "chat-logic")[SECRET_HASH] != before["logic"],
                     timeout=WATCH_SECONDS)
    assert template_annotations(api, "chat-gateway")[SECRET_HASH] == before["gateway"]

    await api.patch("Secret", "chat-redis", {"data": {"url": base64.b64encode(b"redis://other:6379/0").decode()}})
    await eventually(lambda: template_annotations(api, "chat-gateway")[SECRET_HASH] != before["gateway"],
                     timeout=WATCH_SECONDS)


async def test_conditions_follow_the_deployments_within_seconds(
        process_api: tuple[Api, int], make_body: Any, eventually: Any) -> None:
    api, _ = process_api
    await api.backing_secrets()
    await api.create(make_body())
    await eventually(lambda: api.condition("chat", "Progressing")["reason"] == "RollingOut", timeout=WATCH_SECONDS)
    for name in ("chat-gateway", "chat-logic"):
        await api.patch("Deployment", name, {"status": {
            "observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
            "availableReplicas": 2}}, subresource="status")
    await eventually(lambda: api.condition("chat", "Ready")["status"] == "True", timeout=WATCH_SECONDS)

    await api.patch("Deployment", "chat-logic", {"status": {"readyReplicas": 1}}, subresource="status")
    await eventually(lambda: api.condition("chat", "Ready")["reason"] == "ReplicasNotReady", timeout=WATCH_SECONDS)


async def test_only_labelled_secrets_and_children_are_watched(
        process_api: tuple[Api, int], make_body: Any, eventually: Any) -> None:
    api, _ = process_api
    await api.backing_secrets()
    await api.create(make_body())
    await eventually(lambda: api.get("Deployment", "chat-gateway"), timeout=WATCH_SECONDS)
    selectors = {}
    for request in list(api.kmock):
        if request.action in (kmocklib.action.WATCH, kmocklib.action.LIST) and request.resource is not None:
            selectors.setdefault(request.resource.plural, set()).add(request.params.get("labelSelector"))
    assert selectors["secrets"] == {"imcluster.io/watch=true"}
    assert selectors["deployments"] == {"app.kubernetes.io/managed-by=im-operator"}
    assert selectors["horizontalpodautoscalers"] == {"app.kubernetes.io/name=imcluster"}


async def test_metrics_count_reconciliations_by_trigger(
        process_api: tuple[Api, int], make_body: Any, eventually: Any) -> None:
    api, port = process_api
    await api.secret("chat-redis", url="redis://redis:6379/0")
    await api.secret("chat-rabbitmq", url="amqp://im:pw@rabbitmq:5672/")
    await api.create(make_body())  # chat-mysql is missing: a problem, counted as an error

    def counted() -> None:
        text = metrics(port)
        assert 'im_operator_reconciles_total{result="problem",trigger="change"}' in text
        assert 'im_operator_reconcile_errors_total{reason="SecretNotFound"}' in text
        assert 'im_operator_reconcile_duration_seconds_count{trigger="change"}' in text
    await eventually(counted, timeout=WATCH_SECONDS)
