"""Reading the chart's Grafana dashboards: panels, their queries, and queries made runnable."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.charts.chart_helpers import DASHBOARD_DIR

# What Grafana substitutes itself; a Prometheus scraping every second has data at this resolution.
GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.panel}:{self.ref_id}"


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """The value each template variable has when the dashboard opens (`All` becomes its allValue)."""
    values: dict[str, str] = dict(GRAFANA_INTERVALS)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "datasource":
            continue
        current = variable.get("current", {}).get("value")
        if isinstance(current, list):
            current = current[0] if current else None
        if current in (None, "", "$__all"):
            current = variable.get("allValue") or ".*"
        values[variable["name"]] = str(current)
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"undefined variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", replace, expr)


def queries() -> list[Query]:
    found: list[Query] = []
    for path in dashboard_files():
        dashboard = load(path)
        values = variable_values(dashboard)
        for panel in all_panels(dashboard):
            for target in panel.get("targets", []):
                expr = substitute(target["expr"], values)
                found.append(Query(path.stem, panel["title"], target["refId"], expr))
    return found
