"""`im-operator`: run the IMCluster operator (cluster-wide) with a liveness endpoint."""

from __future__ import annotations

import argparse
import asyncio

import kopf

__all__ = ["main"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="im-operator", description=__doc__)
    parser.add_argument("--namespace", "-n", action="append", default=[],
                        help="watch only this namespace (repeatable); default: the whole cluster")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                        help="liveness endpoint URL, or '' to disable")
    parser.add_argument("--peering", default="",
                        help="kopf peering object name for several replicas; default: standalone")
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    kopf.configure(verbose=args.verbose)
    import im_operator.handlers  # noqa: F401  (registers the handlers)

    asyncio.run(kopf.operator(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=not args.peering,
        peering_name=args.peering or None,
        liveness_endpoint=args.liveness or None,
    ))


if __name__ == "__main__":
    main()
