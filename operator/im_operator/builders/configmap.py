"""The non-secret `IM_*` settings shared by gateway and logic (issue 3 contract)."""

from __future__ import annotations

from im_operator.builders.common import Manifest, metadata
from im_operator.spec import GATEWAY_PORT, GRPC_PORT, METRICS_PORT, ClusterSpec, Json, parse

__all__ = ["build", "settings"]


def settings(spec: ClusterSpec) -> dict[str, str]:
    return {
        "IM_HOST": "0.0.0.0",
        # Logic's own default may be loopback: in a pod, gateways reach it through the Service.
        "IM_GRPC_HOST": "0.0.0.0",
        "IM_PORT": str(GATEWAY_PORT),
        "IM_GRPC_PORT": str(GRPC_PORT),
        "IM_METRICS_PORT": str(METRICS_PORT),
        "IM_LOGIC_ADDR": f"{spec.name}-logic:{GRPC_PORT}",
        "IM_SHARDS": str(spec.logic.shards),
        "IM_BATCH_MAX_SIZE": str(spec.logic.batch_max_size),
        "IM_BATCH_MAX_DELAY_MS": str(spec.logic.batch_max_delay_ms),
        "IM_HEARTBEAT_INTERVAL": str(spec.gateway.heartbeat_interval_s),
        "IM_HEARTBEAT_TIMEOUT": str(spec.gateway.heartbeat_timeout_s),
        "IM_DRAIN_SECONDS": str(spec.gateway.drain_seconds),
    }


def build(body: Json) -> Manifest:
    spec = parse(body)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(spec, "config"),
        "data": settings(spec),
    }
