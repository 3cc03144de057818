"""The logic Deployment: gRPC health probes, every backend secret, rollout policy."""

from __future__ import annotations

from typing import Any

from im_operator.builders import logic_deployment


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def test_default_logic(make_body: Any) -> None:
    d = logic_deployment.build(make_body())
    c = container(d)
    assert d["metadata"]["name"] == "chat-logic"
    assert d["spec"]["replicas"] == 2
    assert c["image"] == "imcluster/logic:0.1.0"
    assert c["command"] == ["im-logic"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": 50051, "metrics": 9100}
    assert c["readinessProbe"]["grpc"] == {"port": 50051}
    assert c["livenessProbe"]["grpc"] == {"port": 50051}
    assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_logic_gets_every_backend_url_from_secrets(make_body: Any) -> None:
    body = make_body(mysql={"secretRef": {"name": "db", "key": "dsn"}})
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(logic_deployment.build(body))["env"]}
    assert env == {
        "IM_MYSQL_URL": {"name": "db", "key": "dsn"},
        "IM_RABBITMQ_URL": {"name": "chat-rabbitmq", "key": "url"},
        "IM_REDIS_URL": {"name": "chat-redis", "key": "url"},
        "IM_JWT_SECRET": {"name": "chat-jwt", "key": "secret"},
    }


def test_a_rabbitmq_cluster_ref_uses_the_derived_secret(make_body: Any) -> None:
    body = make_body(rabbitmq={"clusterRef": {"name": "rabbit"}})
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(logic_deployment.build(body))["env"]}
    assert env["IM_RABBITMQ_URL"] == {"name": "chat-rabbitmq", "key": "url"}


def test_under_the_autoscaler_the_live_count_is_kept(make_body: Any) -> None:
    body = make_body(logic={"autoscaling": {"enabled": True}})
    assert logic_deployment.build(body, live_replicas=5)["spec"]["replicas"] == 5
    assert logic_deployment.build(body)["spec"]["replicas"] == 2
    assert logic_deployment.build(make_body(logic={"replicas": 0}))["spec"]["replicas"] == 0
