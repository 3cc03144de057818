"""Value sets the chart is rendered, linted and validated with (shared by several test modules)."""

from __future__ import annotations

from typing import Any

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "everything-on": {
        "commonLabels": {"team": "chat"},
        "image": {"digest": "sha256:" + "a" * 64},
        "imagePullSecrets": [{"name": "registry"}],
        "operator": {
            "verbose": True,
            "replicas": 3,
            "peering": "imcluster",
            "extraArgs": ["--verbose"],
            "extraEnv": [{"name": "IM_OPERATOR_LOG", "value": "debug"}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}],
            "priorityClassName": "system-cluster-critical",
            "podAnnotations": {"example.com/owner": "chat"},
        },
        "serviceAccount": {"annotations": {"example.com/role": "operator"}},
        "example": {"enabled": True},
        "monitoring": {"podMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
                       "operatorServiceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
                       "prometheusRule": {"enabled": True, "alertLabels": {"team": "chat"}}},
        "dashboards": {"namespace": "monitoring", "annotations": {"example.com/source": "imcluster"}},
        "prometheusAdapter": {"rules": {"enabled": True, "namespace": "monitoring"}},
        "keda": {"scaledObject": {"enabled": True}},
    },
    "watch-namespaces": {
        "operator": {"watchNamespaces": ["chat-prod", "chat-staging"], "replicas": 2},
        "monitoring": {"podMonitor": {"enabled": True}},
    },
    "bring-your-own-rbac": {
        "fullnameOverride": "im-operator",
        "serviceAccount": {"create": False, "name": "platform-operator"},
        "rbac": {"create": False},
        "dashboards": {"enabled": False, "folder": ""},
    },
}
