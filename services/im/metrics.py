"""Every Prometheus metric the services export (names are a public contract: docs/architecture.md, "Metrics")."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

__all__ = [
    "BATCH_SIZE",
    "BATCH_WRITE_SECONDS",
    "DEAD_LETTERED",
    "DELIVERY_LATENCY",
    "ERRORS",
    "GATEWAY_CONNECTIONS",
    "LEASE_ROUNDS",
    "MESSAGES_DELIVERED",
    "MESSAGES_PERSISTED",
    "MESSAGES_RECEIVED",
    "PENDING_MESSAGES",
    "PIPELINE_STALLED",
    "SHARDS_OWNED",
    "SHARD_CONSUMERS",
    "UPLINK_MESSAGES",
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
PIPELINE_STALLED = Gauge(
    "im_pipeline_stalled_seconds",
    "How long logic's batch writer has been retrying a write for an outage of the store (0 when it commits)",
    registry=None,
)

SHARDS_OWNED = Gauge(
    "im_logic_shards_owned", "Uplink shards whose lease this logic replica holds (0 without shard leases)",
    registry=None,
)
SHARD_CONSUMER_STATES = ("connecting", "consuming", "draining")
SHARD_CONSUMERS = Gauge(
    "im_logic_shard_consumers",
    "This replica's uplink shard consumers by state: connecting (waiting for RabbitMQ), consuming "
    "(subscribed; RabbitMQ makes one consumer per queue active), draining (finishing before giving a shard back)",
    ["state"], registry=None,
)
LEASE_ROUND_RESULTS = ("renewed", "acquired", "released", "lost", "failed")
LEASE_ROUNDS = Counter(
    "im_logic_lease_renewals",
    "Shard lease outcomes: renewed, acquired, released (given back to share), lost (taken over by another "
    "replica), failed (a round Redis did not answer)",
    ["result"], registry=None,
)
UPLINK_MESSAGES = Counter(
    "im_bus_uplink_messages", "AMQP messages carrying uplinks: published (gateways) or consumed (logic); "
    "uplinks per AMQP message is what the bus costs per message", registry=None,
)
DEAD_LETTERED = Counter(
    "im_bus_dead_lettered", "Bus messages this process could not decode, moved to the dead-letter queue",
    ["direction"], registry=None,
)
for _state in SHARD_CONSUMER_STATES:
    SHARD_CONSUMERS.labels(_state)
for _result in LEASE_ROUND_RESULTS:
    LEASE_ROUNDS.labels(_result)
for _direction in ("uplink", "downlink"):
    DEAD_LETTERED.labels(_direction)

_ROLE_METRICS: dict[str, tuple[Collector, ...]] = {
    "gateway": (GATEWAY_CONNECTIONS, MESSAGES_RECEIVED, MESSAGES_DELIVERED, DELIVERY_LATENCY, ERRORS,
                DEAD_LETTERED, UPLINK_MESSAGES),
    "logic": (MESSAGES_PERSISTED, BATCH_WRITE_SECONDS, BATCH_SIZE, PENDING_MESSAGES, PIPELINE_STALLED, ERRORS,
              SHARDS_OWNED, SHARD_CONSUMERS, LEASE_ROUNDS, DEAD_LETTERED, UPLINK_MESSAGES),
}
_exported: set[Collector] = set()


def export(*roles: str) -> None:
    """Expose the metrics of these roles (`gateway`, `logic`) on the process's /metrics."""
    for role in roles:
        for collector in _ROLE_METRICS[role]:
            if collector not in _exported:
                REGISTRY.register(collector)
                _exported.add(collector)
