"""The gateway and logic Services."""

from __future__ import annotations

from typing import Any

import pytest

from im_operator.builders import gateway_service, logic_service, metrics_service


@pytest.mark.parametrize("kind", ["ClusterIP", "LoadBalancer", "NodePort"])
def test_the_gateway_service_carries_the_client_port_only(make_body: Any, kind: str) -> None:
    svc = gateway_service.build(make_body(gateway={"service": {"type": kind}}))
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http"]


def test_metrics_have_their_own_headless_service_over_both_roles(make_body: Any) -> None:
    svc = metrics_service.build(make_body())
    assert svc["metadata"]["name"] == "chat-metrics"
    assert (svc["spec"]["type"], svc["spec"]["clusterIP"]) == ("ClusterIP", "None")
    assert "app.kubernetes.io/component" not in svc["spec"]["selector"]
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("metrics", 9100)]
    assert [p["name"] for p in logic_service.build(make_body())["spec"]["ports"]] == ["grpc"]


def test_default_gateway_service(make_body: Any) -> None:
    svc = gateway_service.build(make_body())
    assert svc["metadata"]["name"] == "chat-gateway"
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {"http": (8080, "http")}
    assert "externalTrafficPolicy" not in svc["spec"]
    assert "annotations" not in svc["metadata"]


def test_a_load_balancer_gateway_service(make_body: Any) -> None:
    svc = gateway_service.build(make_body(gateway={"service": {
        "type": "LoadBalancer", "port": 443, "annotations": {"example.com/lb": "nlb"}}}))
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["ports"][0]["port"] == 443
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    assert svc["metadata"]["annotations"] == {"example.com/lb": "nlb"}


def test_logic_service_is_the_gateways_grpc_target(make_body: Any) -> None:
    svc = logic_service.build(make_body())
    assert svc["metadata"]["name"] == "chat-logic"  # IM_LOGIC_ADDR = chat-logic:50051
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "logic"
    grpc = next(p for p in svc["spec"]["ports"] if p["name"] == "grpc")
    assert (grpc["port"], grpc["appProtocol"]) == (50051, "grpc")
