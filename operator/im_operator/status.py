"""IMCluster status computed from the observed children: pure functions, no I/O.

Conditions follow the Kubernetes shape (`type`, `status`, `reason`, `message`,
`lastTransitionTime`, `observedGeneration`); a condition keeps its `lastTransitionTime` until its
status changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from im_operator.builders.hpa import CONNECTIONS_METRIC
from im_operator.spec import ClusterSpec

__all__ = ["Observed", "Problem", "role_status", "connections", "conditions", "merge_conditions",
           "transitions", "build_status", "CONDITION_TYPES"]

CONDITION_TYPES = ("Ready", "Progressing", "Degraded")
Condition = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    gateway: Mapping[str, Any] | None = None
    logic: Mapping[str, Any] | None = None
    gateway_autoscaler: Mapping[str, Any] | None = None
    """The HPA that scales the gateways (ours, or the one KEDA made)."""


def role_status(deployment: Mapping[str, Any] | None) -> dict[str, int]:
    if deployment is None:
        return {"desiredReplicas": 0, "replicas": 0, "readyReplicas": 0, "updatedReplicas": 0}
    status = deployment.get("status") or {}
    return {
        "desiredReplicas": int((deployment.get("spec") or {}).get("replicas", 1)),
        "replicas": int(status.get("replicas", 0)),
        "readyReplicas": int(status.get("readyReplicas", 0)),
        "updatedReplicas": int(status.get("updatedReplicas", 0)),
    }


_SUFFIXES = {"m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30}


def _quantity(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text.strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a quantity: {text!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def connections(autoscaler: Mapping[str, Any] | None) -> int | None:
    """Total gateway connections: the HPA's current per-pod average times its pod count."""
    if autoscaler is None:
        return None
    status = autoscaler.get("status") or {}
    for metric in status.get("currentMetrics") or []:
        source = metric.get("pods") or metric.get("external") or {}
        name = (source.get("metric") or {}).get("name", "")
        value = (source.get("current") or {}).get("averageValue")
        if value is not None and (CONNECTIONS_METRIC in name or metric.get("external")):
            try:
                return round(_quantity(str(value)) * int(status.get("currentReplicas", 0)))
            except ValueError:
                return None
    return None


def _rolled_out(deployment: Mapping[str, Any] | None) -> bool:
    if deployment is None:
        return False
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = (deployment.get("status") or {}).get("observedGeneration")
    if generation is not None and (observed is None or int(observed) < int(generation)):
        return False
    role = role_status(deployment)
    return role["updatedReplicas"] >= role["desiredReplicas"] and role["replicas"] == role["desiredReplicas"]


def _ready(deployment: Mapping[str, Any] | None) -> bool:
    role = role_status(deployment)
    return deployment is not None and role["readyReplicas"] >= role["desiredReplicas"]


def _stuck(deployment: Mapping[str, Any] | None) -> str | None:
    for cond in ((deployment or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return str(cond.get("message", "replica failure"))
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return str(cond.get("message", "progress deadline exceeded"))
    return None


def _summary(observed: Observed) -> str:
    gw, lg = role_status(observed.gateway), role_status(observed.logic)
    return (f"gateway {gw['readyReplicas']}/{gw['desiredReplicas']} ready, "
            f"logic {lg['readyReplicas']}/{lg['desiredReplicas']} ready")


def conditions(spec: ClusterSpec, observed: Observed, problem: Problem | None) -> list[Condition]:
    """The three conditions without timestamps (see `merge_conditions`)."""
    roles = {"gateway": observed.gateway, "logic": observed.logic}
    stuck = {role: msg for role, d in roles.items() if (msg := _stuck(d)) is not None}
    pending = [role for role, d in roles.items() if not _rolled_out(d)]
    summary = _summary(observed)

    if problem is not None:
        degraded = ("True", problem.reason, problem.message)
    elif stuck:
        degraded = ("True", "RolloutStuck", "; ".join(f"{role}: {msg}" for role, msg in stuck.items()))
    else:
        degraded = ("False", "AsExpected", "No problem found")

    if spec.paused:
        progressing = ("False", "Paused", f"Reconciliation is paused by {spec.paused_by}: "
                                          "children are observed but not changed")
    elif problem is not None:
        progressing = ("False", problem.reason, "Blocked until the problem is fixed: " + problem.message)
    elif pending:
        progressing = ("True", "RollingOut", f"Waiting for {' and '.join(pending)} to roll out: {summary}")
    else:
        progressing = ("False", "RolloutComplete", f"All children are up to date: {summary}")

    if observed.gateway is None or observed.logic is None:
        ready = ("False", problem.reason if problem else "ChildrenMissing",
                 "The gateway and logic Deployments do not exist yet")
    elif _ready(observed.gateway) and _ready(observed.logic):
        ready = ("True", "AllReplicasReady", summary)
    else:
        ready = ("False", "ReplicasNotReady", summary)

    return [
        {"type": kind, "status": status, "reason": reason, "message": message,
         "observedGeneration": spec.generation}
        for kind, (status, reason, message) in zip(CONDITION_TYPES, (ready, progressing, degraded),
                                                   strict=True)
    ]


def merge_conditions(previous: Sequence[Mapping[str, Any]], current: Sequence[Condition],
                     now: str) -> list[Condition]:
    before = {c.get("type"): c for c in previous}
    merged = []
    for cond in current:
        old = before.get(cond["type"])
        same = old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime")
        merged.append({**cond, "lastTransitionTime": old["lastTransitionTime"] if same and old else now})
    return merged


def transitions(previous: Sequence[Mapping[str, Any]], current: Sequence[Condition]) -> list[Condition]:
    """Conditions whose status or reason changed: each deserves an Event."""
    before = {c.get("type"): (c.get("status"), c.get("reason")) for c in previous}
    return [c for c in current if before.get(c["type"]) != (c["status"], c["reason"])]


def build_status(spec: ClusterSpec, observed: Observed, conds: list[Condition],
                 previous_status: Mapping[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": conds,
        "gateway": role_status(observed.gateway),
        "logic": role_status(observed.logic),
        "connections": connections(observed.gateway_autoscaler) or 0,
        "paused": spec.paused,
    }
    # A paused spec is not acted on, so it is not "observed" yet; a spec with a problem is, and
    # its Degraded condition (same generation) says why nothing changed.
    if not spec.paused:
        status["observedGeneration"] = spec.generation
    elif "observedGeneration" in previous_status:
        status["observedGeneration"] = previous_status["observedGeneration"]
    return status
