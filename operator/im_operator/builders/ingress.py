"""Optional HTTP entries in front of the gateway Service: an Ingress or a Gateway API HTTPRoute."""

from __future__ import annotations

from typing import Any

from im_operator.builders.common import Manifest, child_name, metadata
from im_operator.spec import Json, parse

__all__ = ["ingress", "http_route", "GATEWAY_API_VERSION"]

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"


def ingress(body: Json) -> Manifest:
    spec = parse(body)
    entry = spec.gateway.ingress
    assert entry is not None, "built only when spec.gateway.ingress.enabled"
    rule: dict[str, Any] = {"http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": child_name(spec, "gateway"), "port": {"name": "http"}}},
    }]}}
    if entry.host:
        rule["host"] = entry.host
    ingress_spec: dict[str, Any] = {"rules": [rule]}
    if entry.class_name:
        ingress_spec["ingressClassName"] = entry.class_name
    if entry.tls_secret:
        ingress_spec["tls"] = [{"secretName": entry.tls_secret, **({"hosts": [entry.host]} if entry.host else {})}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(spec, "gateway", "gateway", entry.annotations),
        "spec": ingress_spec,
    }


def http_route(body: Json) -> Manifest:
    spec = parse(body)
    route = spec.gateway.http_route
    assert route is not None, "built only when spec.gateway.httpRoute.enabled"
    route_spec: dict[str, Any] = {
        "parentRefs": route.parent_refs,
        "rules": [{"backendRefs": [{"name": child_name(spec, "gateway"), "port": spec.gateway.service_port}]}],
    }
    if route.hostnames:
        route_spec["hostnames"] = route.hostnames
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": metadata(spec, "gateway", "gateway"),
        "spec": route_spec,
    }
