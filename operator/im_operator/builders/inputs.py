"""What the reconciler learned from the cluster and the builders cannot compute themselves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Inputs"]


@dataclass(frozen=True)
class Inputs:
    rabbitmq_url: str | None = None
    """Derived from a RabbitmqCluster's default user; None when the spec names a Secret."""
    new_jwt_secret: str | None = None
    """A fresh signing key, given only while the generated JWT Secret does not exist yet."""
    service_monitor_api: bool = False
    keda_api: bool = False
    gateway_api: bool = False
    """Whether the Gateway API's HTTPRoute is served."""
    gateway_replicas: int | None = None
    """The gateway Deployment's live `spec.replicas`, if it exists (autoscalers change it)."""
    logic_replicas: int | None = None
    secret_digests: Mapping[str, str] = field(default_factory=dict)
    """A digest of the keys each `secret_files.SecretUse` reads, by its field: a rotation changes it,
    which changes the pod templates and rolls the pods."""
