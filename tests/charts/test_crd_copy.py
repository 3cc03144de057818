"""The chart carries the repository's CRD unchanged: crds/imcluster.yaml is the source of truth."""

from __future__ import annotations

import yaml
from helm_python import chart as helm

from tests.charts.chart_helpers import CHART_DIR

SOURCE = CHART_DIR.parents[1] / "crds" / "imcluster.yaml"
COPY = CHART_DIR / "crds" / "imcluster.yaml"


def test_chart_crd_is_a_byte_identical_copy() -> None:
    assert SOURCE.exists(), f"{SOURCE} is missing"
    assert COPY.exists(), f"copy it: cp {SOURCE} {COPY}"
    assert COPY.read_bytes() == SOURCE.read_bytes(), f"out of date: cp {SOURCE} {COPY}"


def test_helm_installs_the_imcluster_crd(chart: helm.Chart) -> None:
    crds = [yaml.safe_load(c["data"]) for c in chart.crds]
    names = [c["metadata"]["name"] for c in crds]
    assert names == ["imclusters.imcluster.io"]
    (crd,) = crds
    assert crd["spec"]["names"]["kind"] == "IMCluster"
    assert "imc" in crd["spec"]["names"]["shortNames"]
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1"]
