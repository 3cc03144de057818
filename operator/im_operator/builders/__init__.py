"""Pure builders of every child of an IMCluster, and the order they are applied in.

Each module turns the IMCluster body into one manifest (a dict) and does no I/O; the handlers
fetch, adopt, apply and patch status around them.
"""

from __future__ import annotations

from dataclasses import dataclass

from im_operator.builders import (
    configmap,
    gateway_deployment,
    gateway_service,
    hpa,
    jwt_secret,
    keda,
    logic_deployment,
    logic_service,
    network_policy,
    pdb,
    rabbitmq_secret,
    service_monitor,
)
from im_operator.builders.common import Manifest, child_name
from im_operator.spec import Json, parse

__all__ = ["Inputs", "ChildRef", "build_all", "stale", "Manifest"]


@dataclass(frozen=True)
class Inputs:
    """What the handlers learned from the cluster and the builders cannot compute themselves."""

    rabbitmq_url: str | None = None
    """Derived from a RabbitmqCluster's default user; None when the spec names a Secret."""
    new_jwt_secret: str | None = None
    """A fresh signing key, given only while the generated JWT Secret does not exist yet."""
    service_monitor_api: bool = False
    keda_api: bool = False
    gateway_replicas: int | None = None
    """The gateway Deployment's live `spec.replicas`, if it exists (autoscalers change it)."""
    logic_replicas: int | None = None


@dataclass(frozen=True)
class ChildRef:
    api_version: str
    kind: str
    name: str


def build_all(body: Json, inputs: Inputs = Inputs()) -> list[Manifest]:
    """Every desired child, in apply order: config and secrets before the pods that read them."""
    spec = parse(body)
    gw_scaling, lg_scaling = spec.gateway.autoscaling, spec.logic.autoscaling
    children: list[Manifest] = [configmap.build(body)]
    if spec.jwt_secret is None and inputs.new_jwt_secret is not None:
        children.append(jwt_secret.build(body, inputs.new_jwt_secret))
    if spec.rabbitmq_cluster is not None and inputs.rabbitmq_url is not None:
        children.append(rabbitmq_secret.build(body, inputs.rabbitmq_url))
    children += [
        logic_service.build(body),
        logic_deployment.build(body, inputs.logic_replicas),
        network_policy.build(body),
        gateway_service.build(body),
        gateway_deployment.build(body, inputs.gateway_replicas),
        pdb.logic(body),
        pdb.gateway(body),
    ]
    if lg_scaling.enabled:
        children.append(hpa.logic(body))
    if spec.gateway.keda.enabled:
        if inputs.keda_api:
            children.append(keda.build(body))
    elif gw_scaling.enabled:
        children.append(hpa.gateway(body))
    if spec.service_monitor and inputs.service_monitor_api:
        children.append(service_monitor.build(body))
    return children


def stale(body: Json, inputs: Inputs = Inputs()) -> list[ChildRef]:
    """Children an earlier spec may have created that the current spec no longer wants."""
    spec = parse(body)
    refs: list[ChildRef] = []
    if not spec.logic.autoscaling.enabled:
        refs.append(ChildRef("autoscaling/v2", "HorizontalPodAutoscaler", child_name(spec, "logic")))
    if spec.gateway.keda.enabled or not spec.gateway.autoscaling.enabled:
        refs.append(ChildRef("autoscaling/v2", "HorizontalPodAutoscaler", child_name(spec, "gateway")))
    if inputs.keda_api and not spec.gateway.keda.enabled:
        refs.append(ChildRef(keda.API_VERSION, "ScaledObject", child_name(spec, "gateway")))
    if inputs.service_monitor_api and not spec.service_monitor:
        refs.append(ChildRef(service_monitor.API_VERSION, "ServiceMonitor", child_name(spec, "metrics")))
    if spec.rabbitmq_cluster is None:
        refs.append(ChildRef("v1", "Secret", child_name(spec, "rabbitmq")))
    if spec.jwt_secret is not None:
        refs.append(ChildRef("v1", "Secret", child_name(spec, "jwt")))
    return refs
