"""A Prometheus-operator ServiceMonitor scraping both roles through the headless metrics Service."""

from __future__ import annotations

from im_operator.builders import metrics_service
from im_operator.builders.common import Manifest, labels, metadata, selector_labels
from im_operator.spec import Json, parse

__all__ = ["build", "API_VERSION", "PLURAL"]

API_VERSION = "monitoring.coreos.com/v1"
PLURAL = "servicemonitors"


def build(body: Json) -> Manifest:
    spec = parse(body)
    meta = metadata(spec, "metrics")
    meta["labels"] = {**spec.monitoring_labels, **labels(spec)}
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector_labels(spec, metrics_service.COMPONENT)},
            "namespaceSelector": {"matchNames": [spec.namespace]},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
        },
    }
