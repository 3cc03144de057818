"""PodDisruptionBudgets: voluntary evictions take one pod of a role at a time."""

from __future__ import annotations

from im_operator.builders.common import Manifest, metadata, selector_labels
from im_operator.spec import Json, parse

__all__ = ["gateway", "logic"]


def _build(body: Json, component: str) -> Manifest:
    spec = parse(body)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(spec, component, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(spec, component)},
        },
    }


def gateway(body: Json) -> Manifest:
    return _build(body, "gateway")


def logic(body: Json) -> Manifest:
    return _build(body, "logic")
