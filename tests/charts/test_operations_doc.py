"""docs/operations.md points at files that exist and at the names the chart really renders."""

from __future__ import annotations

import re

from helm_python import chart as helm

from tests.charts.chart_helpers import CHART_DIR, one, render

REPO = CHART_DIR.parents[1]
DOC = REPO / "docs" / "operations.md"
# Written by the distributed-mode work (issue 3); referenced here, checked there.
OTHER_DELIVERABLES = {"docs/configuration.md"}


def test_every_repository_path_in_the_doc_exists() -> None:
    pattern = r"\b((?:charts|crds|deploy|docs|examples|tests)/[\w./-]+\.(?:ya?ml|json|md|py))"
    paths = set(re.findall(pattern, DOC.read_text()))
    assert paths
    missing = sorted(p for p in paths - OTHER_DELIVERABLES if not (REPO / p).exists())
    assert not missing


def test_names_in_the_doc_match_what_the_chart_renders(chart: helm.Chart) -> None:
    text = DOC.read_text()
    objects = render(chart, {"prometheusAdapter": {"rules": {"enabled": True}}}, release="imcluster")
    assert f"deployment/{one(objects, 'Deployment')['metadata']['name']}" in text
    adapter = one(objects, "ConfigMap", "imcluster-prometheus-adapter")
    assert f"rules.existing={adapter['metadata']['name']}" in text
    for path in sorted((CHART_DIR / "dashboards").glob("*.json")):
        assert f"imcluster / {path.stem.capitalize()}" in text
