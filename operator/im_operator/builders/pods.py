"""Pod-template fragments shared by the gateway and logic Deployments."""

from __future__ import annotations

from typing import Any

from im_operator.builders import configmap, secret_env
from im_operator.builders.common import CONFIG_HASH_ANNOTATION, Manifest, child_name, digest, labels, metadata
from im_operator.spec import ClusterSpec

__all__ = [
    "TMP_MOUNTS", "TMP_VOLUMES", "config_hash", "container_security", "deployment", "pod_security", "replicas",
    "strategy", "template_metadata",
]

# The root filesystem is read-only: /tmp is the one writable place.
TMP_MOUNTS = [{"name": "tmp", "mountPath": "/tmp"}]
TMP_VOLUMES = [{"name": "tmp", "emptyDir": {}}]


def config_hash(spec: ClusterSpec) -> str:
    """Changes whenever a setting or a Secret reference the pods read at start changes."""
    refs = {name: (ref.name, ref.key) for name, ref in secret_env.refs(spec).items()}
    return digest(configmap.settings(spec), refs)


def template_metadata(spec: ClusterSpec, component: str) -> dict[str, Any]:
    return {
        "labels": labels(spec, component),
        "annotations": {CONFIG_HASH_ANNOTATION: config_hash(spec)},
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


def replicas(fixed: int, autoscaled: bool, min_replicas: int, live: int | None) -> int:
    """The count to apply. Under an autoscaler the live count is re-applied unchanged: omitting the
    field would make server-side apply drop it, and the Deployment would fall back to 1 pod."""
    if not autoscaled:
        return fixed
    return live if live is not None else min_replicas


def deployment(spec: ClusterSpec, component: str, body: dict[str, object]) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(spec, component, component),
        "spec": body,
    }
