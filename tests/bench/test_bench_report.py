"""The report: what `--json` carries and how the text reads."""

from __future__ import annotations

from array import array
from collections import Counter

import orjson

from im.bench.report import format_text, host_section, measured_section, server_section
from im.bench.runner import Merged
from im.bench.setup import ServerSample


def merged(**fields: object) -> Merged:
    base = Merged(planned=100, sent=100, acked=100, expected_deliveries=100, delivered=100, complete=100,
                  wall_seconds=0.5, latency=array("d", [float(i) for i in range(1, 101)]),
                  ack_latency=array("d", [1.0] * 100))
    for name, value in fields.items():
        setattr(base, name, value)
    return base


def test_rate_is_complete_messages_over_wall_time() -> None:
    section = measured_section(merged(complete=90))
    assert section["rate"]["complete_per_second"] == 180.0
    assert section["latency_ms"]["p50"] == 50.0
    assert section["latency_ms"]["p99"] == 99.0
    assert section["latency_ms"]["max"] == 100.0
    assert section["ok"] is False


def test_a_clean_run_is_ok_and_any_error_or_closed_connection_is_not() -> None:
    assert measured_section(merged())["ok"] is True
    assert measured_section(merged(error_codes=Counter({"rate_limited": 1})))["ok"] is False
    assert measured_section(merged(closed_codes=Counter({"4029": 1})))["ok"] is False
    section = measured_section(merged(error_codes=Counter({"rate_limited": 2}),
                                      closed_codes=Counter({"1006": 1})))
    assert section["errors"]["total"] == 3


def test_server_section_reports_rss_and_counter_deltas() -> None:
    url = "http://s/metrics"
    before = ServerSample(100.0, {url: {"process_cpu_seconds_total": 10.0,
                                        "process_resident_memory_bytes": 1.0,
                                        "im_messages_persisted_total": 5.0}}, {})
    after = ServerSample(102.0, {url: {"process_cpu_seconds_total": 11.0,
                                       "process_resident_memory_bytes": 2.0 * 2**20,
                                       "im_messages_persisted_total": 105.0}}, {})
    section = server_section(before, after)
    assert section["rss_total_bytes"] == 2.0 * 2**20
    assert section["cpu_utilization"] == 0.5
    assert section["persisted"] == 100.0
    assert section["delivered"] is None


def test_text_report_has_the_headline_numbers_and_json_serialises() -> None:
    sample = ServerSample(1.0, {"u": {"process_resident_memory_bytes": 64.0 * 2**20}}, {})
    report = {
        "scenario": "throughput", "run": "bench-x", "machine": {"nproc": 2, "python": "3.11.7"},
        "params": {"rate": None}, "connect": {"connected": 4, "failed": {}, "seconds": 0.1},
        "measured": measured_section(merged()), "server": server_section(sample, sample),
        "ceiling": {**measured_section(merged(wall_seconds=0.25)), "ratio": 0.5},
    }
    text = format_text(report)
    assert "100/100 acked+delivered in 0.50s = 200 msg/s" in text
    assert "p50 50.0 / p99 99.0 / max 100.0 ms" in text
    assert "RSS 64.0 MiB" in text
    assert "ours/ceiling = 0.50" in text
    assert "result: OK" in text
    assert orjson.loads(orjson.dumps(report))["measured"]["messages"]["complete"] == 100


def test_idle_text_reports_kib_per_connection() -> None:
    report = {"scenario": "idle", "run": "r", "machine": {"nproc": 2, "python": "3.11"}, "params": {},
              "connect": {"connected": 10, "failed": {"http_401": 1}, "seconds": 1.0},
              "idle": {"rss_before_bytes": 2**20, "rss_after_bytes": 2**20 + 10 * 6144,
                       "rss_per_connection_bytes": 6144.0}}
    text = format_text(report)
    assert "6.00 KiB per connection" in text
    assert "failed {'http_401': 1}" in text


def test_host_section_separates_other_processes_from_ours() -> None:
    section = host_section((10.0, 100.0), (13.0, 104.0), 2.0, ours=1.0)
    assert section == {"cpus": 2.0, "busy_cores": 1.5, "others_cores": 1.0}
    assert host_section(None, (1.0, 2.0), 1.0, None) is None
    assert "others_cores" not in (host_section((0.0, 0.0), (1.0, 2.0), 1.0, None) or {})
