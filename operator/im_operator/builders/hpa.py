"""HorizontalPodAutoscalers: gateways on connections per pod, logic on CPU.

Gateways hold long-lived WebSockets: removing a pod forces every client on it to reconnect, so
scale-down is slow and one pod at a time, while scale-up stays quick.
"""

from __future__ import annotations

from typing import Any

from im_operator.builders.common import Manifest, child_name, metadata
from im_operator.spec import ClusterSpec, Json, parse

__all__ = ["gateway", "logic", "gateway_behavior", "CONNECTIONS_METRIC",
           "SCALE_DOWN_WINDOW_SECONDS", "SCALE_DOWN_PERIOD_SECONDS"]

CONNECTIONS_METRIC = "im_gateway_connections"
SCALE_DOWN_WINDOW_SECONDS = 600
SCALE_DOWN_PERIOD_SECONDS = 300


def gateway_behavior() -> dict[str, Any]:
    return {
        "scaleDown": {
            "stabilizationWindowSeconds": SCALE_DOWN_WINDOW_SECONDS,
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": SCALE_DOWN_PERIOD_SECONDS}],
        },
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 60},
                {"type": "Pods", "value": 4, "periodSeconds": 60},
            ],
        },
    }


def _target(spec: ClusterSpec, component: str) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": child_name(spec, component)}


def gateway(body: Json) -> Manifest:
    spec = parse(body)
    scaling = spec.gateway.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(spec, "gateway", "gateway"),
        "spec": {
            "scaleTargetRef": _target(spec, "gateway"),
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [{
                "type": "Pods",
                "pods": {
                    "metric": {"name": CONNECTIONS_METRIC},
                    "target": {"type": "AverageValue", "averageValue": str(scaling.target)},
                },
            }],
            "behavior": gateway_behavior(),
        },
    }


def logic(body: Json) -> Manifest:
    spec = parse(body)
    scaling = spec.logic.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(spec, "logic", "logic"),
        "spec": {
            "scaleTargetRef": _target(spec, "logic"),
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": scaling.target},
                },
            }],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }
