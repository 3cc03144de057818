"""The logic Deployment: persistence and routing, health-checked over gRPC."""

from __future__ import annotations

from im_operator.builders import pods, secret_env
from im_operator.builders.common import Manifest, selector_labels
from im_operator.spec import GRPC_PORT, METRICS_PORT, Json, parse

__all__ = ["build", "COMPONENT", "TERMINATION_GRACE_SECONDS"]

COMPONENT = "logic"
TERMINATION_GRACE_SECONDS = 30
"""Enough to commit the batch in flight and ack it before SIGKILL."""


def build(body: Json, live_replicas: int | None = None) -> Manifest:
    """`live_replicas`: the Deployment's current count, kept while an autoscaler owns it."""
    spec = parse(body)
    lg = spec.logic
    deployment_spec: dict[str, object] = {
        "replicas": pods.replicas(lg.replicas, lg.autoscaling.enabled, lg.autoscaling.min_replicas,
                                  live_replicas),
        "selector": {"matchLabels": selector_labels(spec, COMPONENT)},
        "strategy": pods.strategy(),
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": pods.template_metadata(spec, COMPONENT),
            "spec": {
                "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                "securityContext": pods.pod_security(),
                "topologySpreadConstraints": pods.spread(spec, COMPONENT),
                "containers": [{
                    "name": COMPONENT,
                    "image": lg.image,
                    "command": ["im-logic"],
                    "ports": [
                        {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
                    ],
                    "envFrom": pods.env_from(spec),
                    "env": secret_env.env(spec, secret_env.LOGIC_SECRETS),
                    "readinessProbe": {
                        "grpc": {"port": GRPC_PORT}, "periodSeconds": 5, "failureThreshold": 2,
                        "timeoutSeconds": 2,
                    },
                    "livenessProbe": {
                        "grpc": {"port": GRPC_PORT}, "initialDelaySeconds": 10, "periodSeconds": 10,
                        "failureThreshold": 3, "timeoutSeconds": 2,
                    },
                    "resources": lg.resources,
                    "securityContext": pods.container_security(),
                    "volumeMounts": pods.TMP_MOUNTS,
                }],
                "volumes": pods.TMP_VOLUMES,
            },
        },
    }
    return pods.deployment(spec, COMPONENT, deployment_spec)
