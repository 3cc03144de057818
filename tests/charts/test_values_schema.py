"""values.schema.json accepts every documented value set and rejects mistakes with the key named."""

from __future__ import annotations

from typing import Any

import pytest
from helm_python import chart as helm
from helm_python.errors import HelmValuesError

from tests.charts.chart_helpers import NAMESPACE, RELEASE
from tests.charts.value_sets import VALUE_SETS

BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown top-level key": ({"replicaCount": 2}, "replicaCount"),
    "unknown operator key": ({"operator": {"replicaCount": 2}}, "replicaCount"),
    "no operator replica": ({"operator": {"replicas": 0}}, "replicas"),
    "an error ratio above one": ({"monitoring": {"prometheusRule": {"errorRatio": 5}}}, "errorRatio"),
    "removed kopf option": ({"operator": {"logFormat": "json"}}, "logFormat"),
    "peering name with capitals": ({"operator": {"peering": "Main"}}, "peering"),
    "health port as a string": ({"operator": {"healthPort": "8080"}}, "healthPort"),
    "privileged health port": ({"operator": {"healthPort": 80}}, "healthPort"),
    "watch namespace not a DNS label": ({"operator": {"watchNamespaces": ["Chat_Prod"]}}, "watchNamespaces"),
    "duplicate watch namespaces": ({"operator": {"watchNamespaces": ["a", "a"]}}, "watchNamespaces"),
    "extra argument that is not a flag": ({"operator": {"extraArgs": ["verbose"]}}, "extraArgs"),
    "pull policy typo": ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    "malformed digest": ({"image": {"digest": "sha256:nothex"}}, "digest"),
    "empty repository": ({"image": {"repository": ""}}, "repository"),
    "zero liveness period": ({"operator": {"livenessProbe": {"periodSeconds": 0}}}, "periodSeconds"),
    "example name with capitals": ({"example": {"name": "Demo"}}, "name"),
    "example enabled as a string": ({"example": {"enabled": "yes"}}, "enabled"),
    "pod monitor interval without unit": ({"monitoring": {"podMonitor": {"interval": "15"}}}, "interval"),
    "pod monitor path not absolute": ({"monitoring": {"podMonitor": {"path": "metrics"}}}, "path"),
    "dashboard label value not a string": ({"dashboards": {"labelValue": 1}}, "labelValue"),
    "dashboard label key with spaces": ({"dashboards": {"label": "grafana dashboard"}}, "label"),
    "keda target of zero": (
        {"keda": {"scaledObject": {"targetConnectionsPerPod": 0}}}, "targetConnectionsPerPod"),
    "keda server without scheme": (
        {"keda": {"scaledObject": {"serverAddress": "prometheus:9090"}}}, "serverAddress"),
    "unknown keda key": ({"keda": {"scaledObject": {"query": "up"}}}, "query"),
    "adapter rules flag as a string": ({"prometheusAdapter": {"rules": {"enabled": "true"}}}, "enabled"),
    "service account name with capitals": ({"serviceAccount": {"create": False, "name": "Op"}}, "name"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_schema_rejects(chart: helm.Chart, case: str) -> None:
    values, key = BAD_VALUES[case]
    with pytest.raises(HelmValuesError, match=key):
        chart.validate_schema(values)
    with pytest.raises(HelmValuesError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_schema_accepts_the_documented_value_sets(chart: helm.Chart, value_set: str) -> None:
    chart.validate_schema(VALUE_SETS[value_set])


def test_schema_describes_every_default_value(chart: helm.Chart) -> None:
    schema = chart.schema
    assert schema is not None

    def walk(values: dict[str, Any], node: dict[str, Any], path: str) -> None:
        for key, value in values.items():
            properties = node.get("properties", {})
            assert key in properties, f"{path}{key} is not in values.schema.json"
            child = properties[key]
            if isinstance(value, dict) and "properties" in child:
                walk(value, child, f"{path}{key}.")

    walk(chart.values, schema, "")
