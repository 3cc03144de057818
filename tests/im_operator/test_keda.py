"""The optional KEDA ScaledObject mirrors the gateway HPA rule."""

from __future__ import annotations

from typing import Any

from im_operator.builders import hpa, keda


def test_scaled_object_queries_connections_per_pod(make_body: Any) -> None:
    so = keda.build(make_body(gateway={"autoscaling": {
        "enabled": True, "minReplicas": 2, "maxReplicas": 12, "targetConnectionsPerPod": 4000,
        "keda": {"enabled": True, "prometheusAddress": "http://prom:9090"}}}))
    assert so["apiVersion"] == "keda.sh/v1alpha1" and so["kind"] == "ScaledObject"
    assert so["spec"]["scaleTargetRef"]["name"] == "chat-gateway"
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (2, 12)
    trigger = so["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["serverAddress"] == "http://prom:9090"
    assert trigger["metadata"]["threshold"] == "4000"
    assert 'im_gateway_connections{namespace="chat",pod=~"chat-gateway-.*"}' in trigger["metadata"]["query"]
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == hpa.gateway_behavior()
