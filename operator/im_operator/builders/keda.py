"""A KEDA ScaledObject for the gateways: the same rule as the HPA, read straight from Prometheus."""

from __future__ import annotations

from im_operator.builders.common import Manifest, child_name, metadata
from im_operator.builders.hpa import CONNECTIONS_METRIC, gateway_behavior
from im_operator.spec import Json, parse

__all__ = ["build", "API_VERSION", "PLURAL"]

API_VERSION = "keda.sh/v1alpha1"
PLURAL = "scaledobjects"


def build(body: Json) -> Manifest:
    spec = parse(body)
    gw = spec.gateway
    deployment = child_name(spec, "gateway")
    query = (f'sum(avg_over_time({CONNECTIONS_METRIC}{{namespace="{spec.namespace}",'
             f'pod=~"{deployment}-.*"}}[1m]))')
    return {
        "apiVersion": API_VERSION,
        "kind": "ScaledObject",
        "metadata": metadata(spec, "gateway", "gateway"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicaCount": gw.autoscaling.min_replicas,
            "maxReplicaCount": gw.autoscaling.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": gateway_behavior()}},
            "triggers": [{
                "type": "prometheus",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": gw.keda.prometheus_address,
                    "query": query,
                    "threshold": str(gw.autoscaling.target),
                },
            }],
        },
    }
