"""`helm lint --strict` finds nothing to warn about, for the defaults and every value set."""

from __future__ import annotations

import pytest
from helm_python import chart as helm

from tests.charts.chart_helpers import CHART_DIR, NAMESPACE
from tests.charts.value_sets import VALUE_SETS

INFO = 1


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_lint_strict_is_clean(value_set: str) -> None:
    report = helm.lint(CHART_DIR, VALUE_SETS[value_set], strict=True, namespace=NAMESPACE,
                       kube_version="v1.33.0")
    assert report["errors"] == []
    # Only the informational "icon is recommended" may remain: the project has no icon yet.
    findings = [m for m in report["messages"] if m["severity"] > INFO]
    assert findings == []
    assert {m["error"] for m in report["messages"]} <= {"icon is recommended"}


def test_chart_metadata() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "imcluster"
    assert meta["type"] == "application"
    assert meta["appVersion"]
