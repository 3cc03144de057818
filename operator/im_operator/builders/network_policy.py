"""Only gateway pods reach logic's gRPC port; metrics stay open to scrapers."""

from __future__ import annotations

from im_operator.builders.common import Manifest, metadata, selector_labels
from im_operator.spec import GRPC_PORT, METRICS_PORT, Json, parse

__all__ = ["build"]


def build(body: Json) -> Manifest:
    spec = parse(body)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(spec, "logic", "logic"),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(spec, "logic")},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": selector_labels(spec, "gateway")}}],
                    "ports": [{"protocol": "TCP", "port": GRPC_PORT}],
                },
                {
                    "from": [{"namespaceSelector": {}}],
                    "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                },
            ],
        },
    }
