"""Autoscalers: gateways on connections with a gentle scale-down, logic on CPU."""

from __future__ import annotations

from typing import Any

from im_operator.builders import hpa


def test_gateway_hpa_scales_on_connections_per_pod(make_body: Any) -> None:
    h = hpa.gateway(make_body(gateway={"autoscaling": {
        "enabled": True, "minReplicas": 3, "maxReplicas": 30, "targetConnectionsPerPod": 8000}}))
    assert h["apiVersion"] == "autoscaling/v2"
    assert h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chat-gateway"}
    assert (h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) == (3, 30)
    assert h["spec"]["metrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": "im_gateway_connections"},
        "target": {"type": "AverageValue", "averageValue": "8000"}}}]


def test_gateway_scale_down_is_slow_and_one_pod_at_a_time(make_body: Any) -> None:
    down = hpa.gateway(make_body())["spec"]["behavior"]["scaleDown"]
    assert 300 <= down["stabilizationWindowSeconds"] <= 600
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": down["policies"][0]["periodSeconds"]}]
    assert down["policies"][0]["periodSeconds"] >= 60
    assert down["selectPolicy"] == "Min"


def test_gateway_scale_up_stays_quick(make_body: Any) -> None:
    up = hpa.gateway(make_body())["spec"]["behavior"]["scaleUp"]
    assert up["stabilizationWindowSeconds"] == 0


def test_logic_hpa_scales_on_cpu(make_body: Any) -> None:
    h = hpa.logic(make_body(logic={"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": 55}}))
    assert h["spec"]["scaleTargetRef"]["name"] == "chat-logic"
    assert h["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 55}}}]
    assert (h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) == (2, 6)
