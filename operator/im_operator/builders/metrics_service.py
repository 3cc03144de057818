"""A headless Service over every gateway and logic pod's metrics port, for the ServiceMonitor.

Kept apart from the client Service so that a public (LoadBalancer) entry never publishes /metrics.
"""

from __future__ import annotations

from im_operator.builders.common import Manifest, metadata, selector_labels
from im_operator.spec import METRICS_PORT, Json, parse

__all__ = ["build", "COMPONENT"]

COMPONENT = "metrics"


def build(body: Json) -> Manifest:
    spec = parse(body)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec, COMPONENT, COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "selector": selector_labels(spec),
            "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }
