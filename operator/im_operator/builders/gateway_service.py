"""The gateway Service: clients' HTTP + WebSocket entry, and nothing else (metrics have their own)."""

from __future__ import annotations

from im_operator.builders.common import Manifest, metadata, selector_labels
from im_operator.spec import Json, parse

__all__ = ["build"]


def build(body: Json) -> Manifest:
    spec = parse(body)
    gw = spec.gateway
    port: dict[str, object] = {"name": "http", "port": gw.service_port, "targetPort": "http", "protocol": "TCP"}
    if gw.tls_secret:
        port["appProtocol"] = "https"
    service_spec: dict[str, object] = {
        "type": gw.service_type,
        "selector": selector_labels(spec, "gateway"),
        "ports": [port],
    }
    if gw.service_type in ("LoadBalancer", "NodePort"):
        service_spec["externalTrafficPolicy"] = "Local"  # keep client addresses, skip a hop
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec, "gateway", "gateway", gw.service_annotations),
        "spec": service_spec,
    }
