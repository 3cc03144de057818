"""The report of one run: a plain dict for `--json`, and the same as text for people."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from im.bench.runner import Merged
from im.bench.setup import ServerSample
from im.bench.stats import summarize

__all__ = ["format_text", "host_cpu", "host_section", "machine", "measured_section", "server_section"]


def machine() -> dict[str, Any]:
    total = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "mem_total_bytes": total, "python": platform.python_version(),
            "implementation": sys.implementation.name, "platform": platform.platform()}


def host_cpu() -> tuple[float, float] | None:
    """(busy, all) CPU seconds of the whole machine so far, summed over CPUs; None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [float(v) for v in stat.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def host_section(before: tuple[float, float] | None, after: tuple[float, float] | None, wall: float,
                 ours: float | None) -> dict[str, Any] | None:
    """How busy the machine was during the measured phase, and how much of it was someone else.

    `ours` is the CPU seconds of the bench plus the server (when the server runs on this machine): the
    rest is other processes competing for the same cores, which makes every number worse.
    """
    if before is None or after is None or wall <= 0:
        return None
    busy = after[0] - before[0]
    cores = (after[1] - before[1]) / wall
    section: dict[str, Any] = {"cpus": round(cores, 2), "busy_cores": round(busy / wall, 3)}
    if ours is not None:
        section["others_cores"] = round(max(0.0, busy - ours) / wall, 3)
    return section


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def measured_section(merged: Merged) -> dict[str, Any]:
    """Counts, rates and latencies of a measured phase."""
    wall = merged.wall_seconds
    errors = sum(merged.error_codes.values())
    return {
        "messages": {
            "planned": merged.planned, "sent": merged.sent, "acked": merged.acked,
            "rejected": merged.rejected,
            "unanswered": merged.sent - merged.acked - merged.rejected,
            "expected_deliveries": merged.expected_deliveries, "delivered": merged.delivered,
            "duplicates": merged.duplicates, "missing": merged.missing, "complete": merged.complete,
            "unexpected": merged.unexpected, "self_echo": merged.self_echo,
        },
        "wall_seconds": round(wall, 3),
        "rate": {
            "complete_per_second": _rate(merged.complete, wall),
            "acked_per_second": _rate(merged.acked, wall),
            "delivered_per_second": _rate(merged.delivered, wall),
        },
        "latency_ms": summarize(merged.latency).as_dict(),
        "ack_latency_ms": summarize(merged.ack_latency).as_dict(),
        "errors": {"total": errors + sum(merged.closed_codes.values()), "by_code": dict(merged.error_codes),
                   "closed_by_code": dict(merged.closed_codes), "stray_answers": merged.stray_answers,
                   "reconnect_frames": merged.reconnects},
        "pacing_max_lag_ms": round(merged.max_lag * 1000, 3),
        "bench_cpu_seconds": round(merged.cpu_seconds, 3),
        "ok": (merged.complete == merged.planned and merged.duplicates == 0 and merged.missing == 0
               and errors == 0 and not merged.closed_codes),
    }


def server_section(before: ServerSample, after: ServerSample) -> dict[str, Any]:
    """Server memory at `after` and what its counters did between the two samples."""

    def delta(name: str) -> float | None:
        first, last = before.total(name), after.total(name)
        return None if first is None or last is None else round(last - first, 3)

    seconds = after.at - before.at
    cpu = delta("process_cpu_seconds_total")
    return {
        "rss_bytes": {url: m.get("process_resident_memory_bytes") for url, m in after.values.items()},
        "rss_total_bytes": after.total("process_resident_memory_bytes"),
        "cpu_seconds": cpu,
        "cpu_utilization": None if cpu is None or seconds <= 0 else round(cpu / seconds, 3),
        "persisted": delta("im_messages_persisted_total"),
        "delivered": delta("im_messages_delivered_total"),
        "received": delta("im_messages_received_total"),
        "unreachable": dict(after.errors),
    }


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MiB"


def _ms(section: dict[str, Any]) -> str:
    def one(key: str) -> str:
        value = section.get(key)
        return "n/a" if value is None else f"{value:.1f}"

    return f"p50 {one('p50')} / p99 {one('p99')} / max {one('max')} ms (n={section['count']})"


def format_text(report: dict[str, Any]) -> str:
    """A few lines for people; `--json` gives everything."""
    lines = [f"im-bench {report['scenario']}  run {report['run']}  "
             f"({report['machine']['nproc']} cpus, python {report['machine']['python']})"]
    connect = report.get("connect")
    if connect:
        lines.append(f"connections: {connect['connected']} open in {connect['seconds']:.1f}s"
                     + (f", failed {connect['failed']}" if connect["failed"] else ""))
    if "idle" in report:
        idle = report["idle"]
        per = idle["rss_per_connection_bytes"]
        lines.append(f"idle: server RSS {_mib(idle['rss_before_bytes'])} -> {_mib(idle['rss_after_bytes'])}, "
                     + ("per connection n/a" if per is None else f"{per / 1024:.2f} KiB per connection"))
    measured = report.get("measured")
    if measured:
        m, rate = measured["messages"], measured["rate"]
        lines.append(f"messages: {m['complete']}/{m['planned']} acked+delivered"
                     f" in {measured['wall_seconds']:.2f}s"
                     f" = {rate['complete_per_second']:.0f} msg/s")
        lines.append(f"  sent {m['sent']} acked {m['acked']} rejected {m['rejected']}"
                     f" unanswered {m['unanswered']}"
                     f" delivered {m['delivered']}/{m['expected_deliveries']} missing {m['missing']}"
                     f" duplicates {m['duplicates']}")
        lines.append(f"latency send->msg: {_ms(measured['latency_ms'])}")
        lines.append(f"latency send->ack: {_ms(measured['ack_latency_ms'])}")
        errors = measured["errors"]
        lines.append(f"errors: {errors['total']}" + (f" {errors['by_code']}" if errors["by_code"] else "")
                     + (f" closed {errors['closed_by_code']}" if errors["closed_by_code"] else ""))
        if report["params"].get("rate"):
            lines.append(f"pacing: max lag behind schedule {measured['pacing_max_lag_ms']:.1f} ms")
        lines.append(f"bench cpu: {measured['bench_cpu_seconds']:.1f}s")
    server = report.get("server")
    if server:
        cpu = server.get("cpu_utilization")
        lines.append(f"server: RSS {_mib(server['rss_total_bytes'])}"
                     + ("" if cpu is None else f", cpu {cpu * 100:.0f}% of one core during the run")
                     + (f", unreachable {server['unreachable']}" if server["unreachable"] else ""))
    host = report.get("host")
    if host:
        lines.append(f"machine: {host['busy_cores']:.2f} of {host['cpus']:.0f} cores busy during the run"
                     + (f", {host['others_cores']:.2f} of them other processes" if "others_cores" in host else ""))
    ceiling = report.get("ceiling")
    if ceiling:
        lines.append(f"ceiling (websockets echo): {ceiling['rate']['complete_per_second']:.0f} msg/s, "
                     f"latency {_ms(ceiling['latency_ms'])}; ours/ceiling = {ceiling['ratio']:.2f}")
    if measured:
        lines.append("result: " + ("OK, every message acked and delivered once" if measured["ok"]
                                   else "NOT OK, see counts above"))
    return "\n".join(lines)
