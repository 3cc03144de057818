"""Names, labels and shared fragments of every child resource."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from im_operator.spec import ClusterSpec

__all__ = [
    "Manifest", "MANAGED_BY", "CONFIG_HASH_ANNOTATION", "SECRET_HASH_ANNOTATION", "WATCH_LABEL", "child_name",
    "selector_labels", "labels", "metadata", "watched_metadata", "digest",
]

Manifest = dict[str, Any]

MANAGED_BY = "im-operator"
CONFIG_HASH_ANNOTATION = "imcluster.io/config-hash"
SECRET_HASH_ANNOTATION = "imcluster.io/secret-hash"
WATCH_LABEL = "imcluster.io/watch"
"""On every Secret an IMCluster reads: the operator watches Secrets with this label only, not all of them."""


def child_name(spec: ClusterSpec, suffix: str) -> str:
    return f"{spec.name}-{suffix}"


def selector_labels(spec: ClusterSpec, component: str | None = None) -> dict[str, str]:
    """The immutable subset used in selectors: never add to it once clusters exist."""
    result = {"app.kubernetes.io/name": "imcluster", "app.kubernetes.io/instance": spec.name}
    if component is not None:
        result["app.kubernetes.io/component"] = component
    return result


def labels(spec: ClusterSpec, component: str | None = None) -> dict[str, str]:
    return {**selector_labels(spec, component), "app.kubernetes.io/managed-by": MANAGED_BY}


def metadata(spec: ClusterSpec, suffix: str, component: str | None = None,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": child_name(spec, suffix),
        "namespace": spec.namespace,
        "labels": labels(spec, component),
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def watched_metadata(spec: ClusterSpec, suffix: str) -> dict[str, Any]:
    """Metadata of a Secret the operator makes and the pods read."""
    meta = metadata(spec, suffix)
    meta["labels"][WATCH_LABEL] = "true"
    return meta


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
