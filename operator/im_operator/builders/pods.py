"""Pod-template fragments shared by the gateway and logic Deployments."""

from __future__ import annotations

from typing import Any

from im_operator.builders import configmap, secret_files
from im_operator.builders.common import (
    CONFIG_HASH_ANNOTATION,
    SECRET_HASH_ANNOTATION,
    Manifest,
    child_name,
    digest,
    labels,
    metadata,
    selector_labels,
)
from im_operator.builders.inputs import Inputs
from im_operator.spec import METRICS_PORT, ClusterSpec, PodOverlay

__all__ = [
    "TMP_MOUNTS", "config_hash", "secret_hash", "container_security", "deployment", "pod_spec", "replicas",
    "strategy", "template_metadata",
]

# The root filesystem is read-only: /tmp is the one writable place.
TMP_MOUNTS = [{"name": "tmp", "mountPath": "/tmp"}]
TMP_VOLUME = {"name": "tmp", "emptyDir": {}}


def config_hash(spec: ClusterSpec) -> str:
    """Changes whenever a setting or a Secret reference the pods read at start changes."""
    refs = [(use.field, use.secret, use.files) for use in secret_files.uses(spec)]
    return digest(configmap.settings(spec), refs)


def secret_hash(spec: ClusterSpec, component: str, inputs: Inputs) -> str:
    """Changes when the content of a Secret this role reads changes (a rotation): the pods read them at
    start, so only new pods see new values."""
    return digest([(use.field, inputs.secret_digests.get(use.field, ""))
                   for use in secret_files.uses(spec) if component in use.roles])


def _overlay(spec: ClusterSpec, component: str) -> PodOverlay:
    return spec.gateway.pod if component == "gateway" else spec.logic.pod


def template_metadata(spec: ClusterSpec, component: str, inputs: Inputs) -> dict[str, Any]:
    overlay = _overlay(spec, component)
    # Ours win: the selector labels must match, and the hashes are what rolls the pods.
    return {
        "labels": {**overlay.labels, **labels(spec, component)},
        "annotations": {**overlay.annotations, CONFIG_HASH_ANNOTATION: config_hash(spec),
                        SECRET_HASH_ANNOTATION: secret_hash(spec, component, inputs)},
    }


def pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}


def strategy() -> dict[str, Any]:
    # Never below the desired count during a rollout: connections and batches are long-lived.
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def env_from(spec: ClusterSpec) -> list[dict[str, Any]]:
    return [{"configMapRef": {"name": child_name(spec, "config")}}]


def spread(spec: ClusterSpec, component: str) -> list[dict[str, Any]]:
    return [{
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": labels(spec, component)},
    }]


def pod_spec(spec: ClusterSpec, component: str, container: dict[str, Any], grace_seconds: int) -> dict[str, Any]:
    """The pod around `container` (named after its role, with the metrics port every role serves):
    security, the secret files, spreading, then the user's overlay."""
    main = {
        "name": component,
        **container,
        "ports": [*container.get("ports", []),
                  {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "envFrom": env_from(spec),
        "env": [*container.get("env", []), *secret_files.env(spec, component)],
        "securityContext": container_security(),
        "volumeMounts": [*TMP_MOUNTS, secret_files.mount()],
    }
    return {
        "terminationGracePeriodSeconds": grace_seconds,
        # Neither role talks to the Kubernetes API: no token in the pod (checkov CKV_K8S_38).
        "automountServiceAccountToken": False,
        "securityContext": pod_security(),
        "topologySpreadConstraints": spread(spec, component),
        **_overlay(spec, component).spec,
        "containers": [main],
        "volumes": [TMP_VOLUME, secret_files.volume(spec, component)],
    }


def replicas(fixed: int, autoscaled: bool, min_replicas: int, live: int | None) -> int:
    """The count to apply. Under an autoscaler the live count is re-applied unchanged: omitting the
    field would make server-side apply drop it, and the Deployment would fall back to 1 pod."""
    if not autoscaled:
        return fixed
    return live if live is not None else min_replicas


def deployment(spec: ClusterSpec, component: str, *, container: dict[str, Any], replicas: int,
               grace_seconds: int, inputs: Inputs) -> Manifest:
    """The Deployment of one role around its main container."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(spec, component, component),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(spec, component)},
            "strategy": strategy(),
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": template_metadata(spec, component, inputs),
                "spec": pod_spec(spec, component, container, grace_seconds),
            },
        },
    }
