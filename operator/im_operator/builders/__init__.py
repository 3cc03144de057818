"""Pure builders of every child of an IMCluster, declared once in the order they are applied.

Each module turns the IMCluster body into one manifest (a dict) and does no I/O; the reconciler
fetches, adopts, applies and patches status around them. `CHILDREN` says, for each child, whether
the spec wants it, how it is built and whether its API must be served: `build_all()` and `stale()`
both read it, so a new conditional child cannot be forgotten in one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from im_operator.builders import (
    configmap,
    gateway_deployment,
    gateway_service,
    hpa,
    ingress,
    jwt_secret,
    keda,
    logic_deployment,
    logic_service,
    metrics_service,
    network_policy,
    pdb,
    rabbitmq_secret,
    service_monitor,
)
from im_operator.builders.common import Manifest, child_name
from im_operator.builders.inputs import Inputs
from im_operator.spec import ClusterSpec, Json, parse

__all__ = ["Inputs", "Child", "ChildRef", "CHILDREN", "build_all", "stale", "Manifest"]


@dataclass(frozen=True)
class ChildRef:
    api_version: str
    kind: str
    name: str


def _always(spec: ClusterSpec) -> bool:
    return True


def _served(inputs: Inputs) -> bool:
    return True


@dataclass(frozen=True)
class Child:
    api_version: str
    kind: str
    suffix: str
    build: Callable[[Json, Inputs], Manifest | None]
    """None: the child must exist but there is nothing to write now (a generated key is kept as is)."""
    wanted: Callable[[ClusterSpec], bool] = _always
    served: Callable[[Inputs], bool] = _served
    """Whether the cluster serves its API; a child of an absent API is neither built nor deleted."""


def _gateway_hpa_wanted(spec: ClusterSpec) -> bool:
    return spec.gateway.autoscaling.enabled and not spec.gateway.keda.enabled


CHILDREN: tuple[Child, ...] = (
    Child("v1", "ConfigMap", "config", lambda body, _: configmap.build(body)),
    Child("v1", "Secret", "jwt",
          lambda body, i: jwt_secret.build(body, i.new_jwt_secret) if i.new_jwt_secret is not None else None,
          wanted=lambda spec: spec.jwt_secret is None),
    Child("v1", "Secret", "rabbitmq",
          lambda body, i: rabbitmq_secret.build(body, i.rabbitmq_url) if i.rabbitmq_url is not None else None,
          wanted=lambda spec: spec.rabbitmq_cluster is not None),
    Child("v1", "Service", "logic", lambda body, _: logic_service.build(body)),
    Child("apps/v1", "Deployment", "logic", logic_deployment.build),
    Child("networking.k8s.io/v1", "NetworkPolicy", "logic", lambda body, _: network_policy.logic(body)),
    Child("v1", "Service", "gateway", lambda body, _: gateway_service.build(body)),
    Child("v1", "Service", "metrics", lambda body, _: metrics_service.build(body)),
    Child("networking.k8s.io/v1", "NetworkPolicy", "gateway", lambda body, _: network_policy.gateway(body)),
    Child("apps/v1", "Deployment", "gateway", gateway_deployment.build),
    Child("policy/v1", "PodDisruptionBudget", "logic", lambda body, _: pdb.logic(body)),
    Child("policy/v1", "PodDisruptionBudget", "gateway", lambda body, _: pdb.gateway(body)),
    Child("autoscaling/v2", "HorizontalPodAutoscaler", "logic", lambda body, _: hpa.logic(body),
          wanted=lambda spec: spec.logic.autoscaling.enabled),
    Child("autoscaling/v2", "HorizontalPodAutoscaler", "gateway", lambda body, _: hpa.gateway(body),
          wanted=_gateway_hpa_wanted),
    Child(keda.API_VERSION, "ScaledObject", "gateway", lambda body, _: keda.build(body),
          wanted=lambda spec: spec.gateway.keda.enabled, served=lambda i: i.keda_api),
    Child(service_monitor.API_VERSION, "ServiceMonitor", "metrics", lambda body, _: service_monitor.build(body),
          wanted=lambda spec: spec.service_monitor, served=lambda i: i.service_monitor_api),
    Child("networking.k8s.io/v1", "Ingress", "gateway", lambda body, _: ingress.ingress(body),
          wanted=lambda spec: spec.gateway.ingress is not None),
    Child(ingress.GATEWAY_API_VERSION, "HTTPRoute", "gateway", lambda body, _: ingress.http_route(body),
          wanted=lambda spec: spec.gateway.http_route is not None, served=lambda i: i.gateway_api),
)


def build_all(body: Json, inputs: Inputs = Inputs()) -> list[Manifest]:
    """Every desired child, in apply order: config and secrets before the pods that read them."""
    spec = parse(body)
    return [manifest for child in CHILDREN
            if child.served(inputs) and child.wanted(spec) and (manifest := child.build(body, inputs)) is not None]


def stale(body: Json, inputs: Inputs = Inputs()) -> list[ChildRef]:
    """Children an earlier spec may have created that the current spec no longer wants."""
    spec = parse(body)
    return [ChildRef(child.api_version, child.kind, child_name(spec, child.suffix))
            for child in CHILDREN if child.served(inputs) and not child.wanted(spec)]
