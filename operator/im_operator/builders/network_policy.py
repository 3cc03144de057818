"""NetworkPolicies: only gateway pods reach logic's gRPC port; clients reach the gateways' client port;
metrics stay open to scrapers in any namespace."""

from __future__ import annotations

from typing import Any

from im_operator.builders.common import Manifest, metadata, selector_labels
from im_operator.spec import GATEWAY_PORT, GRPC_PORT, METRICS_PORT, Json, parse

__all__ = ["logic", "gateway"]


def _metrics() -> dict[str, Any]:
    return {"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": METRICS_PORT}]}


def _build(body: Json, component: str, ingress: list[dict[str, Any]]) -> Manifest:
    spec = parse(body)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(spec, component, component),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(spec, component)},
            "policyTypes": ["Ingress"],
            "ingress": [*ingress, _metrics()],
        },
    }


def logic(body: Json) -> Manifest:
    spec = parse(body)
    return _build(body, "logic", [{
        "from": [{"podSelector": {"matchLabels": selector_labels(spec, "gateway")}}],
        "ports": [{"protocol": "TCP", "port": GRPC_PORT}],
    }])


def gateway(body: Json) -> Manifest:
    # Clients come from anywhere (load balancers, ingress controllers): the client port only.
    return _build(body, "gateway", [{"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]}])
