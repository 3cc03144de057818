"""Rendering the chart to parsed objects, and finding objects among them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from helm_python import chart as helm

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "imcluster"
DASHBOARD_DIR = CHART_DIR / "dashboards"
RELEASE = "imc"
NAMESPACE = "imcluster-system"

Manifest = dict[str, Any]


def render(chart: helm.Chart, values: dict[str, Any] | None = None, *,
           namespace: str = NAMESPACE, release: str = RELEASE) -> list[Manifest]:
    """Render like `helm install` and return every object (test hooks included), NOTES.txt left out."""
    rendered = chart.render(values or {}, name=release, namespace=namespace, is_install=True)
    objects: list[Manifest] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                assert isinstance(doc, dict), f"{path} renders a non-object document"
                objects.append(doc)
    return objects


def by_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [obj for obj in by_kind(objects, kind) if name is None or obj["metadata"]["name"] == name]
    names = [o["metadata"]["name"] for o in found]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {names}"
    return found[0]
