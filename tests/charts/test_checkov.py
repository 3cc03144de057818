"""checkov over the rendered chart and the children the operator builds for examples/imcluster-full.yaml.

Every failing check must be fixed or listed below with the reason it does not apply; a listed check
that no longer fails is an error too, so the list stays true. checkov lives in its own venv
(`scripts/setup-checkov`, which `scripts/test` runs and exports as IM_CHECKOV).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_python import chart as helm

from im_operator.builders import Inputs, build_all
from tests.charts.chart_helpers import REPO, render
from tests.charts.value_sets import VALUE_SETS

# Skipped everywhere, with the reason.
SKIPPED = {
    "CKV_K8S_11": "CPU limits: CFS throttling adds latency to WebSocket and batch work; CPU requests are set "
                  "for scheduling and memory limits cap every container.",
    "CKV_K8S_15": "imagePullPolicy Always: pinning by digest (image.digest, spec.images) is the control; "
                  "Always only adds a registry round trip to every pod start.",
    "CKV_K8S_43": "Image digests: the examples and defaults can only name tags; the chart's image.digest and "
                  "the IMCluster's spec.images take digests, and production should set them.",
}
# Skipped for one resource only: (check, "Kind.namespace.name") -> reason.
SKIPPED_FOR = {
    ("CKV_K8S_38", "Deployment.imcluster-system.imc-imcluster-operator"):
        "The operator talks to the Kubernetes API: it needs its service-account token.",
    ("CKV_K8S_8", "Pod.imcluster-system.imc-imcluster-test-operator-health"):
        "The `helm test` Pod runs one curl and exits: probes have nothing to watch.",
    ("CKV_K8S_9", "Pod.imcluster-system.imc-imcluster-test-operator-health"):
        "The `helm test` Pod runs one curl and exits: probes have nothing to watch.",
    ("CKV2_K8S_6", "Pod.imcluster-system.imc-imcluster-test-operator-health"):
        "The `helm test` Pod lives for one request, made from it, and admits no traffic.",
}
ALL_APIS = Inputs(new_jwt_secret="k", rabbitmq_url="amqp://u:p@h:5672/", service_monitor_api=True, keda_api=True,
                  gateway_api=True)


def checkov() -> str:
    path = os.environ.get("IM_CHECKOV", "")
    if not path or not Path(path).exists():
        if os.environ.get("IM_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail("checkov is not installed: IM_CHECKOV=$(scripts/setup-checkov)")
        pytest.skip("checkov is not installed: IM_CHECKOV=$(scripts/setup-checkov)")
    return path


def manifests(chart: helm.Chart) -> dict[str, list[dict[str, Any]]]:
    body = yaml.safe_load((REPO / "examples" / "imcluster-full.yaml").read_text())
    body["metadata"].update(namespace="chat", uid="uid-chat-full")
    return {"chart.yaml": render(chart, VALUE_SETS["everything-on"]), "children.yaml": build_all(body, ALL_APIS)}


def failures(tmp_path: Path, documents: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str]]:
    for name, objects in documents.items():
        (tmp_path / name).write_text(yaml.safe_dump_all(objects))
    result = subprocess.run([checkov(), "-d", str(tmp_path), "--framework", "kubernetes", "-o", "json", "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [check for r in reports for check in r.get("results", {}).get("failed_checks", [])]
    assert sum(r.get("summary", {}).get("passed", 0) for r in reports) > 100, "checkov checked next to nothing"
    # A Pod check on a Deployment reports a resource named after the pod labels: keep Kind.namespace.name.
    return {(check["check_id"], ".".join(check["resource"].split(".")[:3])) for check in failed}


def test_the_chart_and_the_operators_children_pass_checkov_but_the_listed_checks(
        tmp_path: Path, chart: helm.Chart) -> None:
    found = failures(tmp_path, manifests(chart))
    unexplained = {(check, resource) for check, resource in found
                   if check not in SKIPPED and (check, resource) not in SKIPPED_FOR}
    assert not unexplained, sorted(unexplained)
    stale = ({check for check in SKIPPED if check not in {c for c, _ in found}}
             | {key for key in SKIPPED_FOR if key not in found})
    assert not stale, f"these skips are no longer needed: {sorted(stale)}"
