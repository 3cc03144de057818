"""The chart carries the repository's CRD unchanged: crds/imcluster.yaml is the source of truth."""

from __future__ import annotations

import kubernetes_validate
import yaml
from helm_python import chart as helm

from tests.charts.chart_helpers import CHART_DIR

SOURCE = CHART_DIR.parents[1] / "crds" / "imcluster.yaml"
COPY = CHART_DIR / "crds" / "imcluster.yaml"


def test_chart_crd_is_a_byte_identical_copy() -> None:
    assert SOURCE.exists(), f"{SOURCE} is missing"
    assert COPY.exists(), f"copy it: cp {SOURCE} {COPY}"
    assert COPY.read_bytes() == SOURCE.read_bytes(), f"out of date: cp {SOURCE} {COPY}"


def test_helm_installs_the_imcluster_crd_and_kopfs_peering_crds(chart: helm.Chart) -> None:
    crds = {doc["metadata"]["name"]: doc for c in chart.crds for doc in yaml.safe_load_all(c["data"]) if doc}
    assert set(crds) == {"imclusters.imcluster.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    for doc in crds.values():
        kubernetes_validate.validate(doc, "1.33", strict=True)
    # What kopf looks for (kopf._cogs.structs.references: CLUSTER_PEERINGS_K, NAMESPACED_PEERINGS_K):
    peerings = {(c["spec"]["group"], c["spec"]["versions"][0]["name"], c["spec"]["names"]["plural"], c["spec"]["scope"])
                for name, c in crds.items() if name.endswith(".kopf.dev")}
    assert peerings == {("kopf.dev", "v1", "clusterkopfpeerings", "Cluster"),
                        ("kopf.dev", "v1", "kopfpeerings", "Namespaced")}
    crd = crds["imclusters.imcluster.io"]
    assert crd["spec"]["names"]["kind"] == "IMCluster"
    assert "imc" in crd["spec"]["names"]["shortNames"]
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1"]
