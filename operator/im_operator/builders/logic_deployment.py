"""The logic Deployment: persistence and routing, health-checked over gRPC."""

from __future__ import annotations

from typing import Any

from im_operator.builders import pods
from im_operator.builders.common import Manifest
from im_operator.builders.inputs import Inputs
from im_operator.spec import GRPC_PORT, Json, parse

__all__ = ["build", "COMPONENT", "TERMINATION_GRACE_SECONDS"]

COMPONENT = "logic"
TERMINATION_GRACE_SECONDS = 30
"""Enough to commit the batch in flight and ack it before SIGKILL."""


def _probe(tls: bool) -> dict[str, Any]:
    # The kubelet's gRPC probe speaks plaintext only: under TLS, it can only see the port listening.
    return {"tcpSocket": {"port": "grpc"}} if tls else {"grpc": {"port": GRPC_PORT}}


def build(body: Json, inputs: Inputs = Inputs()) -> Manifest:
    spec = parse(body)
    lg = spec.logic
    tls = bool(spec.grpc_tls_secret)
    container = {
        "image": lg.image,
        "command": ["im-logic"],
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"}],
        "readinessProbe": {**_probe(tls), "periodSeconds": 5, "failureThreshold": 2, "timeoutSeconds": 2},
        "livenessProbe": {**_probe(tls), "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 3,
                          "timeoutSeconds": 2},
        "resources": lg.resources,
    }
    replicas = pods.replicas(lg.replicas, lg.autoscaling.enabled, lg.autoscaling.min_replicas,
                           inputs.logic_replicas)
    return pods.deployment(spec, COMPONENT, container=container, replicas=replicas,
                           grace_seconds=TERMINATION_GRACE_SECONDS, inputs=inputs)
