"""The gateway Deployment: stateless WebSocket front, drained on SIGTERM."""

from __future__ import annotations

from im_operator.builders import pods
from im_operator.builders.common import Manifest
from im_operator.builders.inputs import Inputs
from im_operator.spec import GATEWAY_PORT, ClusterSpec, Json, parse

__all__ = ["build", "COMPONENT", "termination_grace_seconds"]

COMPONENT = "gateway"
GRACE_SLACK_SECONDS = 10
"""Time left to the process after the drain window, to flush and exit before SIGKILL."""


def termination_grace_seconds(spec: ClusterSpec) -> int:
    gw = spec.gateway
    return gw.pre_stop_seconds + gw.drain_seconds + GRACE_SLACK_SECONDS


def build(body: Json, inputs: Inputs = Inputs()) -> Manifest:
    spec = parse(body)
    gw = spec.gateway
    # With TLS on the client port, the kubelet probes over HTTPS (it does not verify the certificate).
    scheme = "HTTPS" if gw.tls_secret else "HTTP"
    container = {
        "image": gw.image,
        "command": ["im-gateway"],
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}],
        "env": [{"name": "IM_GATEWAY_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http", "scheme": scheme},
            "periodSeconds": 5, "failureThreshold": 2, "timeoutSeconds": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http", "scheme": scheme},
            "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 2,
        },
        # Endpoints are removed asynchronously: keep serving a little before SIGTERM.
        "lifecycle": {"preStop": {"sleep": {"seconds": gw.pre_stop_seconds}}},
        "resources": gw.resources,
    }
    replicas = pods.replicas(gw.replicas, gw.autoscaling.enabled or gw.keda.enabled,
                           gw.autoscaling.min_replicas, inputs.gateway_replicas)
    return pods.deployment(spec, COMPONENT, container=container, replicas=replicas,
                           grace_seconds=termination_grace_seconds(spec), inputs=inputs)
