"""What the chart ships lines up with what the operator builds: metric names, pod labels, ports, RBAC."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from helm_python import chart as helm

from tests.charts.chart_helpers import CHART_DIR, one, render

builders = pytest.importorskip("im_operator.builders")
from im_operator.builders import gateway_deployment, hpa, keda, logic_deployment  # noqa: E402

CLUSTER = {
    "apiVersion": "imcluster.io/v1alpha1",
    "kind": "IMCluster",
    "metadata": {"name": "chat", "namespace": "chat", "generation": 1, "uid": "0000"},
    "spec": {
        "rabbitmq": {"secretRef": {"name": "chat-rabbitmq"}},
        "redis": {"secretRef": {"name": "chat-redis"}},
        "mysql": {"secretRef": {"name": "chat-mysql"}},
        "gateway": {"autoscaling": {"enabled": True, "keda": {"enabled": True}}},
    },
}


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        if expression["operator"] == "In" and value not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and value in expression["values"]:
            return False
        if expression["operator"] == "Exists" and value is None:
            return False
        if expression["operator"] == "DoesNotExist" and value is not None:
            return False
    return True


def test_the_adapter_serves_the_metric_the_operator_hpa_asks_for() -> None:
    rules = yaml.safe_load((CHART_DIR / "files" / "prometheus-adapter-rules.yaml").read_text())["rules"]
    served = {rule["name"]["as"] for rule in rules}
    gateway_hpa = hpa.gateway(CLUSTER)
    (metric,) = gateway_hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] in served


@pytest.mark.parametrize("builder", [gateway_deployment, logic_deployment], ids=["gateway", "logic"])
def test_the_pod_monitor_scrapes_the_pods_the_operator_builds(chart: helm.Chart, builder: Any) -> None:
    pod_monitor = one(render(chart, {"monitoring": {"podMonitor": {"enabled": True}}}), "PodMonitor")
    template = builder.build(CLUSTER)["spec"]["template"]
    assert matches(pod_monitor["spec"]["selector"], template["metadata"]["labels"])
    port_names = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] in port_names


def test_the_chart_keda_example_scales_like_the_operator_one(chart: helm.Chart) -> None:
    values = {"keda": {"scaledObject": {"enabled": True, "imcluster": "chat", "namespace": "chat"}}}
    ours = one(render(chart, values), "ScaledObject")["spec"]
    theirs = keda.build(CLUSTER)["spec"]
    assert ours["scaleTargetRef"] == theirs["scaleTargetRef"]
    assert ours["triggers"][0]["metadata"]["query"] == theirs["triggers"][0]["metadata"]["query"]
    assert ours["triggers"][0]["metricType"] == theirs["triggers"][0]["metricType"]
    ours_down = ours["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    theirs_down = theirs["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert ours_down == theirs_down
