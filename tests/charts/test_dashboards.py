"""Each Grafana dashboard is well-formed JSON and every panel queries contract metrics via `${datasource}`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from tests.charts.dashboards import all_panels, dashboard_files, load, queries, substitute, variable_values

PANEL_TYPES_WITHOUT_QUERIES = {"row", "text"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
REQUIRED = {"overview", "persistence", "autoscaling"}


def exported_names() -> set[str]:
    """Every series name the IM processes export (im_* from im.metrics plus the client's defaults)."""
    import im.metrics

    im.metrics.export("gateway", "logic")

    names: set[str] = set()
    for collector_metrics in REGISTRY.collect():
        for sample in collector_metrics.samples:
            names.add(sample.name)
        names.add(collector_metrics.name)
        if collector_metrics.type == "counter":
            names.add(collector_metrics.name + "_total")
        if collector_metrics.type == "histogram":
            names.update(collector_metrics.name + s for s in ("_bucket", "_sum", "_count"))
    return names


def test_the_three_dashboards_exist() -> None:
    assert {p.stem for p in dashboard_files()} == REQUIRED


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.stem)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["uid"] == f"imcluster-{path.stem}"
    assert dashboard["title"].startswith("imcluster / ")
    assert "imcluster" in dashboard["tags"]
    assert "id" not in dashboard or dashboard["id"] is None, "a provisioned dashboard must not pin an id"
    panels = list(all_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] in PANEL_TYPES_WITHOUT_QUERIES:
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        targets: list[dict[str, Any]] = panel["targets"]
        assert targets, f"panel {panel['title']!r} has no query"
        assert len({t["refId"] for t in targets}) == len(targets)
        for target in targets:
            assert target["expr"].strip(), f"panel {panel['title']!r} has an empty query"
            assert target["datasource"] == DATASOURCE


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.stem)
def test_datasource_is_a_template_variable(path: Path) -> None:
    variables = {v["name"]: v for v in load(path)["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name, variable in variables.items():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, name


def test_queries_use_only_metrics_the_services_export() -> None:
    exported = exported_names()
    functions = {"sum", "rate", "count", "avg", "max", "min", "histogram_quantile", "clamp_min", "ceil",
                 "vector", "by", "on", "and", "or", "le", "avg_over_time"}
    for query in queries():
        expr = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", " ", query.expr)
        names = set(re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?=[{\[)]|$)", expr)) - functions
        unknown = {n for n in names if n not in exported and not n.startswith(("process_", "python_"))}
        assert not unknown, f"{query.id} uses series the services do not export: {unknown}"


def test_every_variable_a_query_uses_is_defined() -> None:
    for path in dashboard_files():
        dashboard = load(path)
        values = variable_values(dashboard)
        for panel in all_panels(dashboard):
            for target in panel.get("targets", []):
                substitute(target["expr"], values)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing")
def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    rules = [{"record": f"imcluster:check_{i}", "expr": q.expr} for i, q in enumerate(queries())]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
