"""The gateway Deployment: stateless WebSocket front, drained on SIGTERM."""

from __future__ import annotations

from im_operator.builders import pods, secret_env
from im_operator.builders.common import Manifest, selector_labels
from im_operator.spec import GATEWAY_PORT, METRICS_PORT, ClusterSpec, Json, parse

__all__ = ["build", "COMPONENT", "termination_grace_seconds"]

COMPONENT = "gateway"
GRACE_SLACK_SECONDS = 10
"""Time left to the process after the drain window, to flush and exit before SIGKILL."""


def termination_grace_seconds(spec: ClusterSpec) -> int:
    gw = spec.gateway
    return gw.pre_stop_seconds + gw.drain_seconds + GRACE_SLACK_SECONDS


def build(body: Json, live_replicas: int | None = None) -> Manifest:
    """`live_replicas`: the Deployment's current count, kept while an autoscaler owns it."""
    spec = parse(body)
    gw = spec.gateway
    deployment_spec: dict[str, object] = {
        "replicas": pods.replicas(gw.replicas, gw.autoscaling.enabled or gw.keda.enabled,
                                  gw.autoscaling.min_replicas, live_replicas),
        "selector": {"matchLabels": selector_labels(spec, COMPONENT)},
        "strategy": pods.strategy(),
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": pods.template_metadata(spec, COMPONENT),
            "spec": {
                "terminationGracePeriodSeconds": termination_grace_seconds(spec),
                "securityContext": pods.pod_security(),
                "topologySpreadConstraints": pods.spread(spec, COMPONENT),
                "containers": [{
                    "name": COMPONENT,
                    "image": gw.image,
                    "command": ["im-gateway"],
                    "ports": [
                        {"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
                    ],
                    "envFrom": pods.env_from(spec),
                    "env": [
                        {"name": "IM_GATEWAY_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        *secret_env.env(spec, secret_env.GATEWAY_SECRETS),
                    ],
                    "readinessProbe": {
                        "httpGet": {"path": "/readyz", "port": "http"},
                        "periodSeconds": 5, "failureThreshold": 2, "timeoutSeconds": 2,
                    },
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http"},
                        "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 3,
                        "timeoutSeconds": 2,
                    },
                    # Endpoints are removed asynchronously: keep serving a little before SIGTERM.
                    "lifecycle": {"preStop": {"sleep": {"seconds": gw.pre_stop_seconds}}},
                    "resources": gw.resources,
                    "securityContext": pods.container_security(),
                    "volumeMounts": pods.TMP_MOUNTS,
                }],
                "volumes": pods.TMP_VOLUMES,
            },
        },
    }
    return pods.deployment(spec, COMPONENT, deployment_spec)
