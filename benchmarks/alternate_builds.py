"""Plain-message throughput of two or more builds of `im serve`, in alternating runs.

    .venv/bin/python benchmarks/alternate_builds.py --build before=/tmp/before/services --build after= \
        [--rounds 5] [--messages 200000] [--latency [--rate 5000] [--duration 10]]

A build is `NAME=PYTHONPATH`: the `services` directory of a `git archive` of it (an empty path is this
checkout). Each round starts `im serve --rate-limit 0` of every build in turn on a fresh data
directory and runs `im-bench throughput -n 50 -m MESSAGES --no-ceiling --json` against it (with `--latency`:
`im-bench latency -n 50 --rate RATE --duration DURATION`, the open-loop p99 at a fixed rate), so the
builds alternate minutes apart: on a machine whose speed drifts by 10-20% an hour, only runs that close
together compare. It prints each run (msg/s, send→msg p99, server CPU per complete message, the CPU
others took) and the medians per build; `--raw FILE` keeps every report. A build from before issue 8
serves `/metrics` on its client port; that is found out from its `im serve --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.processes import BIN, ManagedProcess, free_port, port_open  # noqa: E402


@dataclass(frozen=True)
class Build:
    name: str
    env: dict[str, str]
    """Added to the environment of its `im serve`: its PYTHONPATH, if not this checkout."""
    metrics_on_client_port: bool
    """A build from before issue 8: no `--metrics-port`."""

    @staticmethod
    def parse(text: str) -> Build:
        name, sep, pythonpath = text.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"expected NAME=PYTHONPATH, got {text!r}")
        env = {"PYTHONPATH": pythonpath} if pythonpath else {}
        usage = subprocess.run([str(BIN / "im"), "serve", "--help"], env={**os.environ, **env},
                               capture_output=True, text=True, check=True).stdout
        return Build(name, env, "--metrics-port" not in usage)


@dataclass(frozen=True)
class Run:
    rate: float
    p99_ms: float
    cpu_us_per_message: float
    others_cores: float
    complete: bool


def run_once(build: Build, scenario: list[str]) -> dict[str, Any]:
    port = free_port()
    metrics_port = port if build.metrics_on_client_port else free_port()
    with tempfile.TemporaryDirectory(prefix="alternate-builds-") as data_dir:
        argv = [str(BIN / "im"), "serve", "--port", str(port), "--data-dir", data_dir, "--rate-limit", "0",
                "--log-level", "warning"]
        if not build.metrics_on_client_port:
            argv += ["--metrics-port", str(metrics_port)]
        server = ManagedProcess(f"im serve ({build.name})", argv, Path(data_dir) / "server.log", port_open(port),
                                env=build.env)
        try:
            server.start()
            time.sleep(0.5)
            report = subprocess.run(
                [str(BIN / "im-bench"), *scenario, "--url", f"http://127.0.0.1:{port}",
                 "--metrics-url", f"http://127.0.0.1:{metrics_port}/metrics", "-n", "50", "--json", "--quiet"],
                capture_output=True, text=True, check=True).stdout
            return dict(json.loads(report))
        finally:
            server.stop()


def summary(report: dict[str, Any]) -> Run:
    measured = report["measured"]
    complete = measured["messages"]["complete"]
    return Run(measured["rate"]["complete_per_second"], measured["latency_ms"]["p99"],
               report["server"]["cpu_seconds"] / complete * 1e6, report["host"]["others_cores"],
               bool(measured["ok"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Build.parse, action="append", required=True,
                        help="NAME=PYTHONPATH (empty: this checkout); repeat, at least twice")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", "-m", type=int, default=200_000)
    parser.add_argument("--latency", action="store_true", help="the latency scenario instead of throughput")
    parser.add_argument("--rate", type=int, default=5000, help="--latency: messages/s over all connections")
    parser.add_argument("--duration", type=float, default=10.0, help="--latency: seconds")
    parser.add_argument("--raw", type=Path, help="append every im-bench report to this file, one JSON a line")
    args = parser.parse_args()
    scenario = (["latency", "--rate", str(args.rate), "--duration", str(args.duration)] if args.latency
                else ["throughput", "-m", str(args.messages), "--no-ceiling"])
    runs: dict[str, list[Run]] = {build.name: [] for build in args.build}
    for round_ in range(1, args.rounds + 1):
        for build in args.build:
            report = run_once(build, scenario)
            if args.raw is not None:
                with args.raw.open("a") as raw:
                    raw.write(json.dumps({"build": build.name, "report": report}) + "\n")
            run = summary(report)
            runs[build.name].append(run)
            print(f"round {round_} {build.name:>10}: {run.rate:9,.0f} msg/s  p99 {run.p99_ms:6.1f} ms  "
                  f"{run.cpu_us_per_message:5.1f} CPU µs/msg  others {run.others_cores:.2f}"
                  f"{'' if run.complete else '  NOT every message acked and delivered once'}", flush=True)
    first = args.build[0].name
    base = statistics.median(r.rate for r in runs[first]), statistics.median(r.p99_ms for r in runs[first])
    for name, done in runs.items():
        rate = statistics.median(r.rate for r in done)
        p99 = statistics.median(r.p99_ms for r in done)
        cpu = statistics.median(r.cpu_us_per_message for r in done)
        print(f"median {name:>10}: {rate:9,.0f} msg/s ({rate / base[0] - 1:+.1%})  p99 {p99:6.1f} ms "
              f"({p99 / base[1] - 1:+.1%})  {cpu:5.1f} CPU µs/msg")


if __name__ == "__main__":
    main()
