"""`im-operator`: run the IMCluster operator (cluster-wide) with a liveness endpoint and metrics."""

from __future__ import annotations

import argparse
import asyncio
import random

import kopf
from prometheus_client import start_http_server

__all__ = ["main", "parse_args"]

PRIORITY_RANGE = (1, 2**31 - 1)
"""kopf freezes every operator that sees a peer of the same or a higher priority: replicas need distinct ones."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="im-operator", description=__doc__)
    parser.add_argument("--namespace", "-n", action="append", default=[],
                        help="watch only this namespace (repeatable); default: the whole cluster")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                        help="liveness endpoint URL, or '' to disable")
    parser.add_argument("--peering", default="",
                        help="kopf peering object name for several replicas (one leads, the others wait); "
                             "default: standalone")
    parser.add_argument("--priority", type=int, default=None,
                        help="peering priority: the highest live one leads (default: random, so replicas differ)")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="serve Prometheus /metrics on this port (0: off)")
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    kopf.configure(verbose=args.verbose)
    import im_operator.handlers  # noqa: F401  (registers the handlers)

    if args.metrics_port:
        start_http_server(args.metrics_port)
    priority = args.priority if args.priority is not None else random.randint(*PRIORITY_RANGE)
    asyncio.run(kopf.operator(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=not args.peering,
        peering_name=args.peering or None,
        priority=priority if args.peering else None,
        liveness_endpoint=args.liveness or None,
    ))


if __name__ == "__main__":
    main()
