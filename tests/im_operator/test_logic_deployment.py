"""The logic Deployment: gRPC health probes, every backend secret, rollout policy."""

from __future__ import annotations

from typing import Any

from im_operator.builders import Inputs, logic_deployment
from tests.im_operator.manifests import container, secret_files


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


def test_logic_reads_every_backend_url_from_a_mounted_secret_file(make_body: Any) -> None:
    body = make_body(mysql={"secretRef": {"name": "db", "key": "dsn"}})
    d = logic_deployment.build(body)
    assert secret_files(d) == {
        "IM_MYSQL_URL_FILE": ("db", "dsn"),
        "IM_RABBITMQ_URL_FILE": ("chat-rabbitmq", "url"),
        "IM_REDIS_URL_FILE": ("chat-redis", "url"),
        "IM_JWT_SECRET_FILE": ("chat-jwt", "secret"),
    }
    assert not any("secretKeyRef" in str(e) for e in container(d)["env"]), "no secret in the environment"
    assert d["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_a_rabbitmq_cluster_ref_uses_the_derived_secret(make_body: Any) -> None:
    body = make_body(rabbitmq={"clusterRef": {"name": "rabbit"}})
    assert secret_files(logic_deployment.build(body))["IM_RABBITMQ_URL_FILE"] == ("chat-rabbitmq", "url")


def test_grpc_tls_mounts_the_named_secret_and_probes_the_port(make_body: Any) -> None:
    d = logic_deployment.build(make_body(grpc={"tls": {"secretRef": {"name": "grpc-certs"}}}))
    assert {k: v for k, v in secret_files(d).items() if "GRPC" in k} == {
        "IM_GRPC_TLS_CERT_FILE": ("grpc-certs", "tls.crt"),
        "IM_GRPC_TLS_KEY_FILE": ("grpc-certs", "tls.key"),
        "IM_GRPC_TLS_CA_FILE": ("grpc-certs", "ca.crt"),
    }
    assert container(d)["readinessProbe"]["tcpSocket"] == {"port": "grpc"}  # the kubelet's gRPC probe is plaintext


def test_under_the_autoscaler_the_live_count_is_kept(make_body: Any) -> None:
    body = make_body(logic={"autoscaling": {"enabled": True}})
    assert logic_deployment.build(body, Inputs(logic_replicas=5))["spec"]["replicas"] == 5
    assert logic_deployment.build(body)["spec"]["replicas"] == 2
    assert logic_deployment.build(make_body(logic={"replicas": 0}))["spec"]["replicas"] == 0
