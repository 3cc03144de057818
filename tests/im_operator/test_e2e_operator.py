"""The real operator (kopf, all handlers) against kmock's KubernetesEmulator over HTTP.

kmock runs no controllers and no garbage collector: the tests play the Deployment controller
(patching status) and check owner references instead of cascading deletion.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.im_operator.manifests import secret_files

CHILDREN = [
    ("ConfigMap", "chat-config"),
    ("Secret", "chat-jwt"),
    ("Service", "chat-logic"),
    ("Deployment", "chat-logic"),
    ("NetworkPolicy", "chat-logic"),
    ("Service", "chat-gateway"),
    ("Service", "chat-metrics"),
    ("NetworkPolicy", "chat-gateway"),
    ("Deployment", "chat-gateway"),
    ("PodDisruptionBudget", "chat-logic"),
    ("PodDisruptionBudget", "chat-gateway"),
    ("ServiceMonitor", "chat-metrics"),
]
HASH = "imcluster.io/config-hash"


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


async def roll_out(api: Any, name: str, replicas: int) -> None:
    """Play the Deployment controller: every pod updated and ready."""
    await api.patch("Deployment", name, {"status": {
        "observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
        "updatedReplicas": replicas, "availableReplicas": replicas}}, subresource="status")


async def test_an_imcluster_gets_every_child_owned_by_it(api: Any, make_body: Any, eventually: Any) -> None:
    await api.backing_secrets()
    await api.create(make_body())

    def all_children() -> None:
        for kind, name in CHILDREN:
            api.get(kind, name)
    await eventually(all_children)

    owner = api.get("IMCluster", "chat")["metadata"]
    for kind, name in CHILDREN:
        refs = api.get(kind, name)["metadata"]["ownerReferences"]
        assert refs == [{"apiVersion": "imcluster.io/v1alpha1", "kind": "IMCluster", "name": "chat",
                         "uid": owner["uid"], "controller": True, "blockOwnerDeletion": True}], kind

    gateway = api.get("Deployment", "chat-gateway")
    pod = gateway["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "imcluster/gateway:0.1.0"
    assert pod["containers"][0]["command"] == ["im-gateway"]
    assert env_of(gateway)["IM_GATEWAY_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert secret_files(gateway)["IM_RABBITMQ_URL_FILE"] == ("chat-rabbitmq", "url")
    assert secret_files(gateway)["IM_JWT_SECRET_FILE"] == ("chat-jwt", "secret")
    assert gateway["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert HASH in gateway["spec"]["template"]["metadata"]["annotations"]
    assert secret_files(api.get("Deployment", "chat-logic"))["IM_MYSQL_URL_FILE"] == ("chat-mysql", "url")
    assert api.get("ConfigMap", "chat-config")["data"]["IM_LOGIC_ADDR"] == "chat-logic:50051"

    def rolling_out() -> None:
        status = api.get("IMCluster", "chat")["status"]
        assert status["observedGeneration"] == 1
        assert api.condition("chat", "Progressing")["reason"] == "RollingOut"
        assert api.condition("chat", "Ready")["status"] == "False"
        assert api.condition("chat", "Degraded")["status"] == "False"
    await eventually(rolling_out)

    await roll_out(api, "chat-gateway", 2)
    await roll_out(api, "chat-logic", 2)

    def ready() -> None:
        assert api.condition("chat", "Ready") | {"lastTransitionTime": ""} == {
            "type": "Ready", "status": "True", "reason": "AllReplicasReady",
            "message": "gateway 2/2 ready, logic 2/2 ready", "observedGeneration": 1,
            "lastTransitionTime": ""}
        assert api.condition("chat", "Progressing")["reason"] == "RolloutComplete"
        assert api.get("IMCluster", "chat")["status"]["gateway"]["readyReplicas"] == 2
    await eventually(ready)

    def announced() -> None:
        assert {e["reason"] for e in api.events()} >= {"RollingOut", "AllReplicasReady", "RolloutComplete"}
    await eventually(announced)
    await asyncio.sleep(1.2)  # resyncs that find nothing new say nothing
    reasons = [e["reason"] for e in api.events()]
    assert reasons.count("AllReplicasReady") == 1 and reasons.count("RollingOut") == 1, reasons


async def test_a_spec_change_updates_the_children_and_rolls_the_pods(
        api: Any, make_body: Any, eventually: Any) -> None:
    await api.backing_secrets()
    await api.create(make_body())
    await eventually(lambda: api.get("Deployment", "chat-gateway"))
    old_hash = api.get("Deployment", "chat-logic")["spec"]["template"]["metadata"]["annotations"][HASH]

    await api.patch("IMCluster", "chat", {"spec": {
        "gateway": {"replicas": 5}, "logic": {"shards": 32}, "version": "0.2.0"}})

    def updated() -> None:
        assert api.get("Deployment", "chat-gateway")["spec"]["replicas"] == 5
        assert api.get("Deployment", "chat-gateway")["spec"]["template"]["spec"]["containers"][0][
            "image"] == "imcluster/gateway:0.2.0"
        assert api.get("ConfigMap", "chat-config")["data"]["IM_SHARDS"] == "32"
        logic = api.get("Deployment", "chat-logic")
        assert logic["spec"]["template"]["metadata"]["annotations"][HASH] != old_hash
        assert api.get("IMCluster", "chat")["status"]["observedGeneration"] == 2
        assert api.condition("chat", "Progressing")["observedGeneration"] == 2
    await eventually(updated)

    await api.patch("IMCluster", "chat", {"spec": {"gateway": {"autoscaling": {"enabled": True}}}})
    await eventually(lambda: api.get("HorizontalPodAutoscaler", "chat-gateway"))
    hpa = api.get("HorizontalPodAutoscaler", "chat-gateway")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "im_gateway_connections"
    assert api.get("Deployment", "chat-gateway")["spec"]["replicas"] == 5  # not reset on hand-over

    await api.patch("Deployment", "chat-gateway", {"spec": {"replicas": 3}})  # the HPA scales
    await asyncio.sleep(1.2)  # resyncs leave the autoscaler's count alone
    assert api.get("Deployment", "chat-gateway")["spec"]["replicas"] == 3

    await api.patch("HorizontalPodAutoscaler", "chat-gateway", {"status": {
        "currentReplicas": 3, "desiredReplicas": 3,
        "currentMetrics": [{"type": "Pods", "pods": {"metric": {"name": "im_gateway_connections"},
                                                      "current": {"averageValue": "1500"}}}]}},
        subresource="status")

    def counted() -> None:
        assert api.get("IMCluster", "chat")["status"]["connections"] == 4500
    await eventually(counted)

    await api.patch("IMCluster", "chat", {"spec": {"gateway": {"autoscaling": {"enabled": False}}}})
    await eventually(lambda: not api.exists("HorizontalPodAutoscaler", "chat-gateway"))


async def test_drift_of_a_child_is_repaired_by_the_timer(api: Any, make_body: Any, eventually: Any) -> None:
    await api.backing_secrets()
    await api.create(make_body())
    await eventually(lambda: api.get("Service", "chat-gateway"))
    await api.patch("ConfigMap", "chat-config", {"data": {"IM_SHARDS": "1"}})

    def repaired() -> None:
        assert api.get("ConfigMap", "chat-config")["data"]["IM_SHARDS"] == "16"
    await eventually(repaired)


async def test_pausing_stops_changes_and_says_so(api: Any, make_body: Any, eventually: Any) -> None:
    await api.backing_secrets()
    await api.create(make_body())
    await eventually(lambda: api.get("Deployment", "chat-gateway"))
    await eventually(lambda: api.get("IMCluster", "chat")["status"]["observedGeneration"] == 1)

    await api.patch("IMCluster", "chat", {"spec": {"paused": True, "gateway": {"replicas": 7}}})

    def paused() -> None:
        cond = api.condition("chat", "Progressing")
        assert (cond["status"], cond["reason"]) == ("False", "Paused")
        assert "spec.paused" in cond["message"]
    await eventually(paused)
    await asyncio.sleep(1.5)  # several resync periods
    assert api.get("Deployment", "chat-gateway")["spec"]["replicas"] == 2
    assert api.get("IMCluster", "chat")["status"]["observedGeneration"] == 1
    assert any(e["reason"] == "Paused" for e in api.events())

    await api.patch("IMCluster", "chat", {"spec": {"paused": False}})
    await eventually(lambda: api.get("Deployment", "chat-gateway")["spec"]["replicas"] == 7)


async def test_the_pause_annotation_works_like_the_spec_field(api: Any, make_body: Any, eventually: Any) -> None:
    await api.backing_secrets()
    await api.create(make_body())
    await eventually(lambda: api.get("Deployment", "chat-gateway"))
    await api.patch("IMCluster", "chat", {"metadata": {"annotations": {"imcluster.io/paused": "true"}}})

    def paused() -> None:
        assert api.condition("chat", "Progressing")["reason"] == "Paused"
        assert "annotation" in api.condition("chat", "Progressing")["message"]
    await eventually(paused)
    await api.patch("ConfigMap", "chat-config", {"data": {"IM_SHARDS": "1"}})
    await asyncio.sleep(1.5)
    assert api.get("ConfigMap", "chat-config")["data"]["IM_SHARDS"] == "1"


async def test_a_missing_secret_degrades_with_an_event_and_recovers(
        api: Any, make_body: Any, eventually: Any) -> None:
    await api.secret("chat-redis", url="redis://redis:6379/0")
    await api.secret("chat-rabbitmq", url="amqp://im:pw@rabbitmq:5672/")
    await api.create(make_body())

    def degraded() -> None:
        cond = api.condition("chat", "Degraded")
        assert (cond["status"], cond["reason"]) == ("True", "SecretNotFound")
        assert "chat/chat-mysql" in cond["message"] and "spec.mysql.secretRef" in cond["message"]
        assert api.condition("chat", "Ready")["status"] == "False"
        warnings = [e for e in api.events() if e["type"] == "Warning"]
        assert warnings and warnings[0]["reason"] == "SecretNotFound"
        assert "chat-mysql" in warnings[0]["message"]
        assert warnings[0]["involvedObject"]["name"] == "chat"
    await eventually(degraded)
    assert not api.exists("Deployment", "chat-gateway")

    await api.secret("chat-mysql", url="mysql://im:pw@mysql:3306/im")

    def recovered() -> None:
        assert api.condition("chat", "Degraded")["status"] == "False"
        api.get("Deployment", "chat-gateway")
    await eventually(recovered)


async def test_a_missing_secret_key_is_named(api: Any, make_body: Any, eventually: Any) -> None:
    await api.backing_secrets()
    await api.create(make_body(redis={"secretRef": {"name": "chat-redis", "key": "uri"}}))

    def degraded() -> None:
        cond = api.condition("chat", "Degraded")
        assert cond["reason"] == "SecretKeyMissing" and "'uri'" in cond["message"]
    await eventually(degraded)


async def test_a_rabbitmq_cluster_ref_reads_its_default_user(api: Any, make_body: Any, eventually: Any) -> None:
    await api.secret("chat-mysql", url="mysql://x")
    await api.secret("chat-redis", url="redis://x")
    await api.create(make_body(rabbitmq={"clusterRef": {"name": "rabbit"}}))

    def unknown_cluster() -> None:
        cond = api.condition("chat", "Degraded")
        assert cond["reason"] == "RabbitmqClusterNotFound" and "chat/rabbit" in cond["message"]
    await eventually(unknown_cluster)

    await api.create({"apiVersion": "rabbitmq.com/v1beta1", "kind": "RabbitmqCluster",
                      "metadata": {"name": "rabbit"}, "spec": {"replicas": 3}})
    await api.secret("rabbit-default-user", username="default_user_a/b", password="p@ss",
                     host="rabbit.chat.svc", port="5672")

    def derived() -> None:
        secret = api.get("Secret", "chat-rabbitmq")
        import base64
        url = base64.b64decode(secret["data"]["url"]).decode()
        assert url == "amqp://default_user_a%2Fb:p%40ss@rabbit.chat.svc:5672/"
        assert secret_files(api.get("Deployment", "chat-logic"))["IM_RABBITMQ_URL_FILE"] == ("chat-rabbitmq", "url")
        assert api.condition("chat", "Degraded")["status"] == "False"
    await eventually(derived)


@pytest.mark.without_crds("ServiceMonitor", "RabbitmqCluster")
async def test_without_the_prometheus_and_rabbitmq_operators(api: Any, make_body: Any, eventually: Any) -> None:
    await api.backing_secrets()
    await api.create(make_body())
    await api.create(make_body("other", rabbitmq={"clusterRef": {"name": "rabbit"}}))

    def applied_without_service_monitor() -> None:
        api.get("Deployment", "chat-gateway")
        assert api.condition("chat", "Degraded")["status"] == "False"
    await eventually(applied_without_service_monitor)
    assert not [key for key in api.kmock.objects if key[0].plural == "servicemonitors"]

    def other_degraded() -> None:
        cond = api.condition("other", "Degraded")
        assert cond["reason"] == "RabbitmqClusterNotFound" and "cluster-operator" in cond["message"]
    await eventually(other_degraded)
