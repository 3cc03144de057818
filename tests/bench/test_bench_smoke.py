"""`im-bench` end to end against a real `im serve`: small numbers, counts checked, times only reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

IM_BENCH = str(Path(sys.executable).with_name("im-bench"))


def bench(*args: str) -> dict[str, Any]:
    done = subprocess.run([IM_BENCH, *args, "--json", "--quiet"], capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    report: dict[str, Any] = orjson.loads(done.stdout)
    return report


def bench_server(scenario: str, server: Any, *args: str) -> dict[str, Any]:
    """A run against `server`, reading its metrics from its metrics port."""
    return bench(scenario, "--url", server.url, "--metrics-url", server.metrics_url, *args)


def assert_clean(measured: dict[str, Any], planned: int) -> None:
    messages = measured["messages"]
    assert messages["complete"] == messages["planned"] == planned
    assert messages["missing"] == messages["duplicates"] == messages["unexpected"] == 0
    assert measured["errors"]["total"] == 0
    assert measured["ok"] is True
    assert measured["latency_ms"]["count"] == messages["expected_deliveries"]


@pytest.mark.integration
def test_throughput_run_delivers_every_message_once_and_measures_the_ceiling(standalone_server: Any) -> None:
    report = bench_server("throughput", standalone_server, "-n", "4", "-m", "200", "--window", "8")
    assert report["connect"]["connected"] == 4
    assert_clean(report["measured"], 200)
    assert report["server"]["rss_total_bytes"] > 0
    assert report["server"]["persisted"] == 200
    ceiling = report["ceiling"]
    assert ceiling["messages"]["complete"] == 200
    assert ceiling["ratio"] > 0


@pytest.mark.integration
def test_paced_group_and_idle_runs_against_the_real_server(standalone_server: Any) -> None:
    paced = bench_server("latency", standalone_server, "-n", "4", "--rate", "200", "--duration", "1",
                  "--processes", "2")
    assert_clean(paced["measured"], 200)

    group = bench_server("group", standalone_server, "--members", "5", "-m", "20")
    assert_clean(group["measured"], 20)
    assert group["measured"]["messages"]["expected_deliveries"] == 4 * 20

    idle = bench_server("idle", standalone_server, "-n", "20", "--users", "5", "--idle-seconds", "0.5")
    assert idle["idle"]["connected"] == 20
    assert idle["idle"]["rss_per_connection_bytes"] is not None


@pytest.mark.integration
def test_read_run_gets_every_read_event_on_both_devices(standalone_server: Any) -> None:
    done = subprocess.run([IM_BENCH, "read", "--url", standalone_server.url, "--metrics-url",
                           standalone_server.metrics_url, "--readers", "4", "--rate", "80", "--duration", "1"],
                          capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    report = orjson.loads(done.stdout)
    assert report["reads"] == 80
    assert report["events_on_other_device"] == report["events_on_reading_device"] == 80
    assert report["errors"] == 0
    assert report["latency_ms"]["count"] == 80
    assert report["server_cpu_us_per_read"] is not None and report["server_push_p99_at_most_ms"] is not None
