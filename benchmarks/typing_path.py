"""Which path typing takes in distributed mode: measured on a local cluster (1 logic, 2 gateways).

    .venv/bin/python benchmarks/typing_path.py [--samples 300]

Starts `im-logic` and two `im-gateway`s on the shared MariaDB, Redis and RabbitMQ of this machine
(a fresh database, key prefix and vhost, removed at exit; throttle and rate limit off), then, with
the typist on one gateway and the receiver on the other, one sample at a time:

- `typing` end to end through the fast lane (gateway -> RabbitMQ -> logic: cached membership and
  blocks, Redis locate -> RabbitMQ -> gateway), the path built;
- `send` end to end (the same hops plus the batch writer and the MySQL commit), for comparison;
- the round trips the other path (gateway to gateway by the session map) would make instead of the
  hop through logic: a gRPC call to logic (membership and blocks live in the store; a gateway would
  ask logic or cache what logic tells it) and a Redis `locate`; it keeps the RabbitMQ hop to the
  receiver's gateway.

Prints p50 / p99 / max in milliseconds of each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from im.backends.sessions.redis import RedisSessions  # noqa: E402
from im.client import ChatConnection, HttpClient  # noqa: E402
from im.contracts.records import Caller  # noqa: E402
from im.rpc.client import GrpcLogicClient  # noqa: E402
from tests.support.cluster import Backends, local_cluster  # noqa: E402
from tests.support.servers import (  # noqa: E402
    MYSQL_URL,
    RABBITMQ_URL,
    REDIS_URL,
    mysql_database,
    rabbitmq_vhost,
    redis_prefix,
)


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{name:<40} p50 {statistics.median(ordered) * 1000:6.2f}  p99 {p99 * 1000:6.2f}  "
            f"max {ordered[-1] * 1000:6.2f} ms  (n={len(ordered)})")


async def measure(urls: list[str], grpc_port: int, backends: Backends, samples: int) -> None:
    here, there = HttpClient(urls[0]), HttpClient(urls[1])
    stamp = time.time_ns()
    alice = await here.signup(f"typist{stamp}@example.test")
    bob = await there.signup(f"reader{stamp}@example.test")
    a = await ChatConnection.open(here.ws_url, alice.token)
    b = await ChatConnection.open(there.ws_url, bob.token)
    await asyncio.sleep(0.5)
    typing, sends, grpc, locate = [], [], [], []
    for i in range(samples + 20):
        started = time.perf_counter()
        await a.send_frame({"type": "typing", "to": bob.user_id})
        await b.expect("typing")
        typing.append(time.perf_counter() - started)
        started = time.perf_counter()
        await a.send(f"m{i}", "hello", to=bob.user_id)
        await b.expect("msg")
        sends.append(time.perf_counter() - started)
        await a.expect("ack")
    sessions = RedisSessions(backends.redis_url, key_prefix=backends.redis_prefix)
    await sessions.start()
    async with GrpcLogicClient(f"127.0.0.1:{grpc_port}") as logic:
        caller = Caller(bob.user_id, bob.token)
        for _ in range(samples + 20):
            started = time.perf_counter()
            await logic.blocked(caller)
            grpc.append(time.perf_counter() - started)
            started = time.perf_counter()
            await sessions.locate([bob.user_id])
            locate.append(time.perf_counter() - started)
    await sessions.close()
    await a.close()
    await b.close()
    print(summary("typing, fast lane through logic", typing[20:]))
    print(summary("send (batch writer + MySQL commit)", sends[20:]))
    print(summary("gRPC round trip to logic (blocked)", grpc[20:]))
    print(summary("Redis locate", locate[20:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as workdir:
        backends = Backends(stack.enter_context(mysql_database(MYSQL_URL)), REDIS_URL,
                            stack.enter_context(redis_prefix(REDIS_URL)),
                            stack.enter_context(rabbitmq_vhost(RABBITMQ_URL)))
        cluster = stack.enter_context(local_cluster(Path(workdir), backends))
        logic = cluster.start_logic()
        settings = {"IM_TYPING_INTERVAL_SECONDS": "0", "IM_RATE_LIMIT": "0"}
        gateways = [cluster.start_gateway(**settings), cluster.start_gateway(**settings)]
        asyncio.run(measure([g.url for g in gateways], logic.grpc_port, backends, args.samples))  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
