"""The chart's PrometheusRule, run by `promtool test rules` against synthetic series.

Each alert has a case where it must fire and one where it must stay quiet, over the series the IM
processes export (docs/operations.md, "Alerts").
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_python import chart as helm

from tests.charts.chart_helpers import one, render

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
GW = 'namespace="chat",pod="chat-gateway-a",container="gateway"'
LOGIC = 'namespace="chat",pod="chat-logic-a",container="logic"'


def series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


# alert -> (series that make it fire, the labels it fires with, series that keep it quiet), 1m apart.
CASES: dict[str, tuple[list[dict[str, str]], dict[str, str], list[dict[str, str]]]] = {
    "IMGatewayDown": (
        [series("up", GW, "1 1 0x10"), series("up", GW.replace("-a", "-b"), "1x12")],
        {"severity": "warning", "namespace": "chat", "pod": "chat-gateway-a", "container": "gateway"},
        [series("up", GW, "1 1 0 1x10")],  # one missed scrape is not an outage
    ),
    "IMNoGatewayUp": (
        [series("up", GW, "1 0x10"), series("up", GW.replace("-a", "-b"), "1 0x10")],
        {"severity": "critical", "namespace": "chat"},
        [series("up", GW, "1 0x10"), series("up", GW.replace("-a", "-b"), "1x11")],
    ),
    "IMLogicBacklogGrowing": (
        [series("im_logic_pending_messages", LOGIC, "6000+100x30")],
        {"severity": "warning", "namespace": "chat", "pod": "chat-logic-a", "container": "logic"},
        [series("im_logic_pending_messages", LOGIC, "9000-100x30")],  # high but draining
    ),
    "IMPipelineStalled": (
        [series("im_messages_received_total", GW, "0+600x15"), series("im_messages_persisted_total", LOGIC, "0x15")],
        {"severity": "critical", "namespace": "chat"},
        [series("im_messages_received_total", GW, "0+600x15"),
         series("im_messages_persisted_total", LOGIC, "0+600x15")],
    ),
    "IMErrorRateHigh": (
        [series("im_messages_received_total", GW, "0+600x20"),
         series("im_errors_total", GW + ',code="internal"', "0+60x20"),
         series("im_errors_total", GW + ',code="rate_limited"', "0+600x20")],
        {"severity": "warning", "namespace": "chat"},
        # Client errors (rate_limited, bad_frame...) are the clients' business, not an outage.
        [series("im_messages_received_total", GW, "0+600x20"),
         series("im_errors_total", GW + ',code="rate_limited"', "0+600x20"),
         series("im_errors_total", GW + ',code="unavailable"', "0+6x20")],
    ),
    "IMGatewayConnectionsNearLimit": (
        [series("im_gateway_connections", GW, "17000x10"), series("process_max_fds", GW, "20000x10")],
        {"severity": "warning", "namespace": "chat", "pod": "chat-gateway-a", "container": "gateway"},
        [series("im_gateway_connections", GW, "12000x10"), series("process_max_fds", GW, "20000x10")],
    ),
}
EVAL_AT = "14m"


@pytest.fixture(scope="module")
def rules(chart: helm.Chart) -> dict[str, Any]:
    rule = one(render(chart, {"monitoring": {"prometheusRule": {"enabled": True}}}), "PrometheusRule")
    groups: dict[str, Any] = rule["spec"]
    return groups


def test_the_rule_is_off_by_default(chart: helm.Chart) -> None:
    assert not [o for o in render(chart) if o["kind"] == "PrometheusRule"]


def test_every_alert_has_a_firing_and_a_quiet_case(rules: dict[str, Any]) -> None:
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    assert alerts == set(CASES)


def promtool(tmp_path: Path, rules: dict[str, Any], tests: list[dict[str, Any]]) -> None:
    if not Path(PROMTOOL).exists():
        pytest.fail(f"{PROMTOOL} is missing: scripts/setup-services installs Debian's prometheus package")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    checked = subprocess.run([PROMTOOL, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = subprocess.run([PROMTOOL, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def annotations(rules: dict[str, Any], alert: str, labels: dict[str, str], value: str) -> dict[str, str]:
    """The annotations as Prometheus expands them (promtool compares them exactly)."""
    [rule] = [r for group in rules["groups"] for r in group["rules"] if r["alert"] == alert]
    expanded = {}
    for key, text in rule["annotations"].items():
        for name, label in labels.items():
            text = text.replace(f"{{{{ $labels.{name} }}}}", label)
        expanded[key] = text.replace("{{ $value | humanizePercentage }}", value).replace(
            "{{ $value | humanize }}", value)
    return expanded


def test_each_alert_fires_on_its_symptom_and_stays_quiet_otherwise(tmp_path: Path, rules: dict[str, Any]) -> None:
    values = {"IMLogicBacklogGrowing": "7.4k", "IMErrorRateHigh": "10%", "IMGatewayConnectionsNearLimit": "85%"}
    tests = []
    for alert, (firing, labels, quiet) in CASES.items():
        expected = {"exp_labels": labels,
                    "exp_annotations": annotations(rules, alert, labels, values.get(alert, ""))}
        tests.append({"interval": "1m", "input_series": firing,
                      "alert_rule_test": [{"eval_time": EVAL_AT, "alertname": alert, "exp_alerts": [expected]}]})
        tests.append({"interval": "1m", "input_series": quiet,
                      "alert_rule_test": [{"eval_time": EVAL_AT, "alertname": alert, "exp_alerts": []}]})
    promtool(tmp_path, rules, tests)
