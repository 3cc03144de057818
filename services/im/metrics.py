"""Every Prometheus metric the services export (names are a public contract: ARCHITECTURE section 5)."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

__all__ = [
    "BATCH_SIZE",
    "BATCH_WRITE_SECONDS",
    "DELIVERY_LATENCY",
    "ERRORS",
    "GATEWAY_CONNECTIONS",
    "MESSAGES_DELIVERED",
    "MESSAGES_PERSISTED",
    "MESSAGES_RECEIVED",
    "PENDING_MESSAGES",
    "export",
]

GATEWAY_CONNECTIONS = Gauge(
    "im_gateway_connections", "Open authenticated WebSocket connections on this gateway", registry=None
)
MESSAGES_RECEIVED = Counter("im_messages_received_total", "Client messages accepted by the gateway", registry=None)
MESSAGES_PERSISTED = Counter("im_messages_persisted_total", "Messages committed to the store", registry=None)
MESSAGES_DELIVERED = Counter(
    "im_messages_delivered_total", "Messages pushed to a recipient connection", registry=None
)
DELIVERY_LATENCY = Histogram(
    "im_delivery_latency_seconds",
    "From the gateway accepting a message to pushing it to a recipient",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=None,
)
BATCH_WRITE_SECONDS = Histogram(
    "im_batch_write_seconds",
    "Time to commit one batch of messages",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=None,
)
BATCH_SIZE = Histogram(
    "im_batch_size", "Messages per committed batch", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    registry=None,
)
ERRORS = Counter("im_errors_total", "Errors by protocol error code", ["code"], registry=None)
PENDING_MESSAGES = Gauge(
    "im_logic_pending_messages", "Messages received by logic and not yet committed", registry=None
)

_ROLE_METRICS: dict[str, tuple[Collector, ...]] = {
    "gateway": (GATEWAY_CONNECTIONS, MESSAGES_RECEIVED, MESSAGES_DELIVERED, DELIVERY_LATENCY, ERRORS),
    "logic": (MESSAGES_PERSISTED, BATCH_WRITE_SECONDS, BATCH_SIZE, PENDING_MESSAGES, ERRORS),
}
_exported: set[Collector] = set()


def export(*roles: str) -> None:
    """Expose the metrics of these roles (`gateway`, `logic`) on the process's /metrics."""
    for role in roles:
        for collector in _ROLE_METRICS[role]:
            if collector not in _exported:
                REGISTRY.register(collector)
                _exported.add(collector)
