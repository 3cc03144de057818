"""The gateway Deployment: image, command, env, probes, drain and rollout policy."""

from __future__ import annotations

from typing import Any

from im_operator.builders import Inputs, gateway_deployment
from tests.im_operator.manifests import container, secret_files


def env(deployment: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment)["env"]}


def test_default_gateway(make_body: Any) -> None:
    d = gateway_deployment.build(make_body())
    c = container(d)
    assert d["metadata"]["name"] == "chat-gateway"
    assert d["spec"]["replicas"] == 2
    assert c["image"] == "imcluster/gateway:0.1.0"
    assert c["command"] == ["im-gateway"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8080, "metrics": 9100}
    assert c["envFrom"] == [{"configMapRef": {"name": "chat-config"}}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http", "scheme": "HTTP"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTP"}
    assert d["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_secrets_come_from_mounted_files_and_the_id_from_the_pod_name(make_body: Any) -> None:
    d = gateway_deployment.build(make_body())
    assert env(d)["IM_GATEWAY_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert secret_files(d) == {
        "IM_RABBITMQ_URL_FILE": ("chat-rabbitmq", "url"),
        "IM_REDIS_URL_FILE": ("chat-redis", "url"),
        "IM_JWT_SECRET_FILE": ("chat-jwt", "secret"),
    }  # no MySQL: the gateway reaches it only through logic


def test_a_named_jwt_secret_replaces_the_generated_one(make_body: Any) -> None:
    d = gateway_deployment.build(make_body(auth={"jwtSecretRef": {"name": "mine", "key": "k"}}))
    assert secret_files(d)["IM_JWT_SECRET_FILE"] == ("mine", "k")


def test_a_tls_secret_makes_the_gateway_serve_https(make_body: Any) -> None:
    d = gateway_deployment.build(make_body(gateway={"tls": {"secretRef": {"name": "chat-tls"}}}))
    files = secret_files(d)
    assert (files["IM_TLS_CERT_FILE"], files["IM_TLS_KEY_FILE"]) == (("chat-tls", "tls.crt"), ("chat-tls", "tls.key"))
    assert container(d)["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"


def test_grace_period_covers_the_pre_stop_sleep_and_the_drain(make_body: Any) -> None:
    d = gateway_deployment.build(make_body(gateway={"drainSeconds": 120, "preStopSeconds": 8}))
    pod = d["spec"]["template"]["spec"]
    assert container(d)["lifecycle"]["preStop"] == {"sleep": {"seconds": 8}}
    assert pod["terminationGracePeriodSeconds"] >= 8 + 120


def test_rollouts_never_go_below_the_desired_count(make_body: Any) -> None:
    strategy = gateway_deployment.build(make_body())["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def test_under_the_autoscaler_the_live_count_is_kept(make_body: Any) -> None:
    body = make_body(gateway={"replicas": 9, "autoscaling": {"enabled": True, "minReplicas": 3}})
    assert gateway_deployment.build(body, Inputs(gateway_replicas=7))["spec"]["replicas"] == 7
    assert gateway_deployment.build(body)["spec"]["replicas"] == 3  # new: start at the minimum
    fixed = make_body(gateway={"replicas": 9})
    assert gateway_deployment.build(fixed, Inputs(gateway_replicas=7))["spec"]["replicas"] == 9


def test_selector_matches_the_pod_labels(make_body: Any) -> None:
    d = gateway_deployment.build(make_body())
    selector = d["spec"]["selector"]["matchLabels"]
    assert selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    assert selector["app.kubernetes.io/component"] == "gateway"


def test_a_config_change_changes_the_pod_template_hash(make_body: Any) -> None:
    def config_hash(body: dict[str, Any]) -> str:
        annotations = gateway_deployment.build(body)["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["imcluster.io/config-hash"])

    base = config_hash(make_body())
    assert config_hash(make_body()) == base
    assert config_hash(make_body(logic={"shards": 8})) != base
    assert config_hash(make_body(redis={"secretRef": {"name": "other-redis"}})) != base
    assert config_hash(make_body(gateway={"replicas": 7})) == base  # scaling is not a config change


def test_resources_from_the_spec(make_body: Any) -> None:
    resources = {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
    assert container(gateway_deployment.build(make_body(gateway={"resources": resources})))[
        "resources"] == resources
