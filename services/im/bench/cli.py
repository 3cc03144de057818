"""`im-bench`: measure a running imcluster server (standalone or distributed).

    im-bench throughput --connections 50 --messages 20000
    im-bench latency --rate 5000 --duration 10
    im-bench idle --connections 10000
    im-bench group --members 500 --messages 100 --rate 20
    im-bench ceilings --rabbitmq-url amqp://.../VHOST --mysql-url mysql://.../DB   (see im-bench ceilings -h)
    im-bench read --readers 50 --rate 5000 --duration 10   (see im-bench read -h)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from im.bench.http import HttpError, ws_url
from im.bench.plan import ConnSpec, Plan, SenderSpec
from im.bench.report import format_text, host_cpu, host_section, machine, measured_section, server_section
from im.bench.runner import Fleet
from im.bench.setup import BenchUser, SetupError, add_members, create_group, create_users, sample_servers
from im.bench.stats import partners, split_counts

__all__ = ["build_parser", "is_loopback", "main", "private_plan", "source_addresses"]

SCENARIOS = ("throughput", "latency", "idle", "group")
IDLE_CONNECTIONS_PER_PROCESS = 5000
"""Idle connections one bench process opens: well inside 20,000 open files, and handshakes stay quick."""
CONNECTIONS_PER_SOURCE_ADDRESS = 20000
"""Connections per 127.0.0.x source address: ephemeral ports 32768-60999 leave room for other users."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="im-bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", nargs="?", choices=SCENARIOS, help="what to measure (default: throughput)")
    p.add_argument("--scenario", dest="scenario_option", choices=SCENARIOS, help="same as the positional")
    p.add_argument("--url", action="append", dest="urls", metavar="URL",
                   help="server (gateway) base URL; repeat for several gateways, connections go round-robin "
                        "(default http://127.0.0.1:8080)")
    p.add_argument("--metrics-url", action="append", dest="metrics_urls", metavar="URL",
                   help="Prometheus endpoint(s) to read RSS/CPU from (default: <url>/metrics of each --url)")
    p.add_argument("-n", "--connections", type=int, help="WebSocket connections (default: throughput and "
                   "latency 50, idle 1000, group = --members)")
    p.add_argument("--users", type=int, help="idle only: users the connections are spread over "
                   "(default min(connections, 200); each login costs a slow KDF on the server)")
    p.add_argument("-m", "--messages", type=int, help="messages in total (default: throughput 20000, "
                   "latency rate x duration, group 200)")
    p.add_argument("--rate", type=float, help="messages/s paced over all senders (default: latency 5000, "
                   "otherwise as fast as --window allows)")
    p.add_argument("--duration", type=float, default=10.0, help="latency: seconds to send for (default 10)")
    p.add_argument("--window", type=int, default=32, help="unanswered messages per sender when not paced "
                   "(default 32)")
    p.add_argument("--size", type=int, default=64, help="characters of content per message (default 64)")
    p.add_argument("--members", type=int, default=100, help="group: members, all online (default 100)")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="idle: wait this long before reading RSS")
    p.add_argument("--ceiling", action=argparse.BooleanOptionalAction, default=None,
                   help="also measure a plain websockets echo server (default: on for throughput)")
    p.add_argument("--processes", type=int, help="client processes (default 1; idle: one per "
                   f"{IDLE_CONNECTIONS_PER_PROCESS} connections)")
    p.add_argument("--source-addresses", type=int, help="bind connections to 127.0.0.1..K round-robin when "
                   f"the server is on loopback (default: one per {CONNECTIONS_PER_SOURCE_ADDRESS} "
                   "connections)")
    p.add_argument("--setup-concurrency", type=int, default=16, help="register/login calls in flight")
    p.add_argument("--connect-concurrency", type=int, default=200, help="WebSocket handshakes in flight, "
                   "per process")
    p.add_argument("--timeout", type=float, help="longest measured phase, seconds (default: 120, or the "
                   "paced duration + 60)")
    p.add_argument("--settle", type=float, default=5.0, help="stop waiting after this many seconds without "
                   "progress (default 5)")
    p.add_argument("--prefix", help="run prefix in user emails (default: bench-<time>-<random>)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--check", action="store_true", help="exit 1 unless every message was acked and "
                   "delivered exactly once without errors")
    return p


def is_loopback(base_url: str) -> bool:
    """Whether the server is on this machine's IPv4 loopback (so 127.0.0.x source addresses reach it)."""
    host = urlsplit(base_url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return address.version == 4 and address.is_loopback


def source_addresses(base_url: str, connections: int, wanted: int | None) -> list[str | None]:
    """Source addresses to bind, cycled over connections; `[None]` lets the kernel choose."""
    count = wanted if wanted is not None else math.ceil(connections / CONNECTIONS_PER_SOURCE_ADDRESS)
    if not is_loopback(base_url) or count <= 1:
        return [None]
    return [f"127.0.0.{1 + i}" for i in range(min(count, 254))]


def _conns(users: Sequence[BenchUser], connections: int, urls: Sequence[str],
           sources: Sequence[str | None]) -> list[ConnSpec]:
    specs = []
    for slot in range(connections):
        user = users[slot % len(users)]
        specs.append(ConnSpec(slot, user.user_id, ws_url(urls[slot % len(urls)], user.token),
                              sources[slot % len(sources)]))
    return specs


def private_plan(conns: list[ConnSpec], messages: int, **settings: Any) -> Plan:
    """Everyone sends to a partner (pairs, see `stats.partners`); messages split evenly over senders."""
    partner = partners(len(conns))
    counts = split_counts(messages, len(conns))
    senders = [SenderSpec(c.slot, counts[i], [conns[partner[i]].slot], to=conns[partner[i]].user_id)
               for i, c in enumerate(conns)]
    return Plan("im", conns, senders, **settings)


def _echo_plan(plan: Plan, port: int) -> Plan:
    """The same pattern against the echo server: each sender is its own recipient."""
    conns = [ConnSpec(c.slot, c.user_id, f"ws://127.0.0.1:{port}/", c.local_addr) for c in plan.conns]
    senders = [SenderSpec(s.slot, s.count, [s.slot], to=s.to, group=s.group) for s in plan.senders]
    return Plan("echo", conns, senders, plan.rate, plan.window, plan.content_size, plan.timeout, plan.settle,
                plan.connect_concurrency, plan.ping_interval)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scenario: str = args.scenario_option or args.scenario or "throughput"
        self.urls: list[str] = [u.rstrip("/") for u in (args.urls or ["http://127.0.0.1:8080"])]
        self.metrics_urls: list[str] = args.metrics_urls or [u + "/metrics" for u in self.urls]
        self.prefix: str = args.prefix or f"bench-{int(time.time())}-{secrets.token_hex(3)}"
        self.quiet: bool = args.quiet

    def say(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def _params(self) -> dict[str, Any]:
        a = self.args
        scenario = self.scenario
        connections = a.connections or {"idle": 1000, "group": a.members}.get(scenario, 50)
        rate = a.rate if a.rate is not None else (5000.0 if scenario == "latency" else None)
        messages = a.messages
        if messages is None:
            if scenario == "latency":
                messages = int((rate or 5000.0) * a.duration)
            else:
                messages = {"group": 200, "idle": 0}.get(scenario, 20000)
        users = connections if scenario != "idle" else (a.users or min(connections, 200))
        processes = a.processes or (math.ceil(connections / IDLE_CONNECTIONS_PER_PROCESS)
                                    if scenario == "idle" else 1)
        timeout = a.timeout or ((messages / rate + 60) if rate else 120.0)
        ceiling = a.ceiling if a.ceiling is not None else scenario == "throughput"
        return {"urls": self.urls, "connections": connections, "users": users, "messages": messages,
                "rate": rate, "window": a.window, "size": a.size,
                "members": connections if scenario == "group" else None, "processes": processes,
                "timeout": timeout, "settle": a.settle, "ceiling": ceiling,
                "idle_seconds": a.idle_seconds if scenario == "idle" else None}

    async def run(self) -> dict[str, Any]:
        params = self._params()
        report: dict[str, Any] = {"scenario": self.scenario, "run": self.prefix,
                                  "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "machine": machine(), "params": params}
        if params["connections"] < (1 if self.scenario == "idle" else 2):
            raise SetupError("need at least 2 connections (1 for idle)")
        first = await sample_servers(self.metrics_urls)
        if first.errors and not first.values:
            raise SetupError(f"cannot read server metrics: {first.errors}")

        began = time.time()
        last_said = 0.0

        def registered(done: int) -> None:
            nonlocal last_said
            if time.time() - last_said >= 1.0 or done == params["users"]:
                last_said = time.time()
                self.say(f"[setup] {done}/{params['users']} users registered and logged in")

        users = await create_users(self.urls, params["users"], self.prefix, self.args.setup_concurrency,
                                   registered)
        setup: dict[str, Any] = {"users": len(users), "user_seconds": round(time.time() - began, 3)}
        sources = source_addresses(self.urls[0], params["connections"], self.args.source_addresses)
        conns = _conns(users, params["connections"], self.urls, sources)
        settings: dict[str, Any] = {"rate": params["rate"], "window": params["window"],
                                    "content_size": params["size"], "timeout": params["timeout"],
                                    "settle": params["settle"],
                                    "connect_concurrency": self.args.connect_concurrency}
        if self.scenario == "group":
            owner = users[0]
            group_id = await create_group(self.urls[0], owner, f"{self.prefix} bench group")
            await add_members(self.urls[0], owner, group_id, users[1:], self.args.setup_concurrency)
            setup["group_id"] = group_id
            plan = Plan("im", conns, [SenderSpec(0, params["messages"], [c.slot for c in conns[1:]],
                                                 group=group_id)], **settings)
        elif self.scenario == "idle":
            plan = Plan("im", conns, [], **settings)
        else:
            plan = private_plan(conns, params["messages"], **settings)
        setup["seconds"] = round(time.time() - began, 3)
        report["setup"] = setup
        self.say(f"[setup] done in {setup['seconds']:.1f}s; opening {len(conns)} connections "
                 f"over {params['processes']} process(es)")

        before = await sample_servers(self.metrics_urls)
        fleet = Fleet(plan, params["processes"], None if self.quiet else self.say)
        try:
            report["connect"] = await fleet.open()
            self.say(f"[connect] {report['connect']}")
            if self.scenario == "idle":
                await asyncio.sleep(self.args.idle_seconds)
                after = await sample_servers(self.metrics_urls)
                report["idle"] = self._idle_section(before, after, report["connect"]["connected"])
                report["server"] = server_section(before, after)
                return report
            at_start = await sample_servers(self.metrics_urls)
            cpu_start, began_measure = host_cpu(), time.time()
            merged = await fleet.measure()
            cpu_end, measure_seconds = host_cpu(), time.time() - began_measure
            at_end = await sample_servers(self.metrics_urls)
        finally:
            await fleet.close()
        report["measured"] = measured_section(merged)
        report["server"] = server_section(at_start, at_end)
        server_cpu = report["server"]["cpu_seconds"]
        local = all(is_loopback(url) for url in self.urls)
        ours = merged.cpu_seconds + server_cpu if local and server_cpu is not None else None
        report["host"] = host_section(cpu_start, cpu_end, measure_seconds, ours)
        if report["host"] is not None:  # unix times, to match other samplers against the measured phase
            report["host"]["measured_from"] = round(began_measure, 3)
            report["host"]["measured_to"] = round(began_measure + measure_seconds, 3)
        if params["ceiling"]:
            report["ceiling"] = await self._ceiling(plan, params["processes"], report["measured"])
        return report

    @staticmethod
    def _idle_section(before: Any, after: Any, connected: int) -> dict[str, Any]:
        rss_before = before.total("process_resident_memory_bytes")
        rss_after = after.total("process_resident_memory_bytes")
        per = None
        if rss_before is not None and rss_after is not None and connected:
            per = round((rss_after - rss_before) / connected, 1)
        return {"connected": connected, "rss_before_bytes": rss_before, "rss_after_bytes": rss_after,
                "rss_per_connection_bytes": per,
                "rss_per_connection_kib": None if per is None else round(per / 1024, 3),
                "gateway_connections": after.total("im_gateway_connections")}

    async def _ceiling(self, plan: Plan, processes: int, ours: dict[str, Any]) -> dict[str, Any]:
        self.say("[ceiling] measuring a plain websockets echo server with the same pattern")
        server = await asyncio.create_subprocess_exec(sys.executable, "-m", "im.bench.echo", "--port", "0",
                                                      stdout=asyncio.subprocess.PIPE)
        try:
            assert server.stdout is not None
            line = (await asyncio.wait_for(server.stdout.readline(), 30)).decode()
            if not line.startswith("listening "):
                raise SetupError(f"echo server did not start: {line!r}")
            fleet = Fleet(_echo_plan(plan, int(line.split()[1])), processes, None if self.quiet else self.say)
            try:
                await fleet.open()
                section = measured_section(await fleet.measure())
            finally:
                await fleet.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                server.terminate()
            await server.wait()
        ceiling_rate = section["rate"]["complete_per_second"]
        ours_rate = ours["rate"]["complete_per_second"]
        section["ratio"] = round(ours_rate / ceiling_rate, 3) if ceiling_rate else None
        return section


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ceilings"]:
        from im.bench.ceilings import main as ceilings_main

        ceilings_main(argv[1:])
        return
    if argv[:1] == ["read"]:
        from im.bench.reads import main as reads_main

        reads_main(argv[1:])
        return
    args = build_parser().parse_args(argv)
    bench = Bench(args)
    from im.bench.loop import run

    try:
        report = run(bench.run())
    except (SetupError, HttpError) as exc:
        sys.stderr.write(f"im-bench: setup failed: {exc}\n")
        raise SystemExit(2) from exc
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(format_text(report) + "\n")
    sys.stdout.flush()
    if args.check and not report.get("measured", {}).get("ok", True):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
