"""`build_all()`: every child, in order, valid against the Kubernetes 1.33 schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from im_operator.builders import ChildRef, Inputs, build_all, stale

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CRD_KINDS = {"ServiceMonitor", "ScaledObject", "HTTPRoute"}  # not in the built-in schemas
ALL_APIS = Inputs(new_jwt_secret="k", rabbitmq_url="amqp://u:p@h:5672/", service_monitor_api=True, keda_api=True,
                  gateway_api=True)


def example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    body["metadata"]["namespace"] = "chat"
    return body


def kinds(children: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["kind"], c["metadata"]["name"]) for c in children]


def test_default_children_in_apply_order(make_body: Any) -> None:
    assert kinds(build_all(make_body(), Inputs(new_jwt_secret="k"))) == [
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
    ]


def test_an_existing_jwt_secret_is_never_rebuilt(make_body: Any) -> None:
    assert ("Secret", "chat-jwt") not in kinds(build_all(make_body(), Inputs()))


def test_optional_children_follow_the_spec_and_the_installed_apis(make_body: Any) -> None:
    body = make_body(gateway={"autoscaling": {"enabled": True}}, logic={"autoscaling": {"enabled": True}},
                     rabbitmq={"clusterRef": {"name": "rabbit"}})
    built = kinds(build_all(body, ALL_APIS))
    assert ("HorizontalPodAutoscaler", "chat-gateway") in built
    assert ("HorizontalPodAutoscaler", "chat-logic") in built
    assert ("Secret", "chat-rabbitmq") in built
    assert ("ServiceMonitor", "chat-metrics") in built
    assert ("ServiceMonitor", "chat-metrics") not in kinds(build_all(body, Inputs()))
    assert built.index(("Secret", "chat-rabbitmq")) < built.index(("Deployment", "chat-logic"))


def test_keda_replaces_the_gateway_hpa(make_body: Any) -> None:
    body = make_body(gateway={"autoscaling": {"enabled": True, "keda": {"enabled": True}}})
    built = kinds(build_all(body, ALL_APIS))
    assert ("ScaledObject", "chat-gateway") in built
    assert ("HorizontalPodAutoscaler", "chat-gateway") not in built
    assert ChildRef("autoscaling/v2", "HorizontalPodAutoscaler", "chat-gateway") in stale(body, ALL_APIS)


def test_stale_children_of_a_smaller_spec(make_body: Any) -> None:
    body = make_body(auth={"jwtSecretRef": {"name": "mine"}}, monitoring={"serviceMonitor": False})
    assert set(stale(body, ALL_APIS)) == {
        ChildRef("autoscaling/v2", "HorizontalPodAutoscaler", "chat-logic"),
        ChildRef("autoscaling/v2", "HorizontalPodAutoscaler", "chat-gateway"),
        ChildRef("keda.sh/v1alpha1", "ScaledObject", "chat-gateway"),
        ChildRef("monitoring.coreos.com/v1", "ServiceMonitor", "chat-metrics"),
        ChildRef("v1", "Secret", "chat-rabbitmq"),
        ChildRef("v1", "Secret", "chat-jwt"),
        ChildRef("networking.k8s.io/v1", "Ingress", "chat-gateway"),
        ChildRef("gateway.networking.k8s.io/v1", "HTTPRoute", "chat-gateway"),
    }


def test_an_ingress_or_an_http_route_leads_to_the_gateway_service(make_body: Any) -> None:
    body = make_body(gateway={
        "service": {"port": 443}, "tls": {"secretRef": {"name": "chat-tls"}},
        "ingress": {"enabled": True, "className": "nginx", "host": "chat.example.com",
                    "tlsSecretRef": {"name": "edge-tls"}},
        "httpRoute": {"enabled": True, "parentRefs": [{"name": "public", "namespace": "gateways"}],
                      "hostnames": ["chat.example.com"]}})
    built = {c["kind"]: c for c in build_all(body, ALL_APIS)}
    rule = built["Ingress"]["spec"]["rules"][0]
    assert rule["host"] == "chat.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "chat-gateway", "port": {"name": "http"}}
    assert built["Ingress"]["spec"]["tls"] == [{"secretName": "edge-tls", "hosts": ["chat.example.com"]}]
    route = built["HTTPRoute"]["spec"]
    assert route["parentRefs"] == [{"name": "public", "namespace": "gateways"}]
    assert route["rules"] == [{"backendRefs": [{"name": "chat-gateway", "port": 443}]}]
    assert ("HTTPRoute", "chat-gateway") not in kinds(build_all(body, Inputs()))  # Gateway API absent


def test_a_generated_jwt_secret_is_never_stale(make_body: Any) -> None:
    assert ChildRef("v1", "Secret", "chat-jwt") not in stale(make_body(), ALL_APIS)


SPECS = {
    "default": {},
    "autoscaled": {"gateway": {"autoscaling": {"enabled": True}}, "logic": {"autoscaling": {"enabled": True}}},
    "keda": {"gateway": {"autoscaling": {"enabled": True, "keda": {"enabled": True}}}},
    "load-balancer": {"gateway": {"service": {"type": "LoadBalancer", "port": 443,
                                              "annotations": {"a.example/b": "c"}}}},
    "node-port-no-replicas": {"gateway": {"replicas": 0, "service": {"type": "NodePort"}},
                              "logic": {"replicas": 0}},
    "cluster-ref": {"rabbitmq": {"clusterRef": {"name": "rabbit", "namespace": "mq"}}},
    "tls": {"gateway": {"tls": {"secretRef": {"name": "chat-tls"}}, "ingress": {"enabled": True}},
            "grpc": {"tls": {"secretRef": {"name": "chat-grpc-tls"}}}},
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_every_child_is_valid_for_kubernetes(make_body: Any, spec: dict[str, Any]) -> None:
    for child in build_all(make_body(**spec), ALL_APIS):
        if child["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(child, "1.33", strict=True)


@pytest.mark.parametrize("name", ["imcluster-minimal.yaml", "imcluster-full.yaml"])
def test_every_child_of_the_examples_is_valid_for_kubernetes(name: str) -> None:
    children = build_all(example(name), ALL_APIS)
    assert len(children) >= 9
    for child in children:
        assert child["metadata"]["namespace"] == "chat"
        if child["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(child, "1.33", strict=True)


def test_children_have_unique_names_per_kind(make_body: Any) -> None:
    built = kinds(build_all(make_body(**SPECS["autoscaled"]), ALL_APIS))
    assert len(built) == len(set(built))
