"""A typed, defaulted view of an IMCluster body.

The API server applies the CRD defaults, but the operator must not depend on it (an object stored
before a default was added, or a test server that applies no schema), so every default lives here
once, mirroring `crds/imcluster.yaml`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "API_GROUP", "API_VERSION", "KIND", "PLURAL", "PAUSED_ANNOTATION", "DEFAULT_VERSION",
    "GATEWAY_PORT", "GRPC_PORT", "METRICS_PORT", "JWT_SECRET_KEY", "RABBITMQ_URL_KEY",
    "TLS_CERT_KEY", "TLS_KEY_KEY", "TLS_CA_KEY",
    "SecretRef", "ClusterRef", "PodOverlay", "Ingress", "HttpRoute", "GatewaySpec", "LogicSpec", "ClusterSpec",
    "parse",
]

API_GROUP = "imcluster.io"
API_VERSION = "v1alpha1"
KIND = "IMCluster"
PLURAL = "imclusters"
PAUSED_ANNOTATION = "imcluster.io/paused"
DEFAULT_VERSION = "0.1.0"

GATEWAY_PORT = 8080
GRPC_PORT = 50051
METRICS_PORT = 9100
JWT_SECRET_KEY = "secret"
RABBITMQ_URL_KEY = "url"
# The keys of a `kubernetes.io/tls` Secret (cert-manager adds `ca.crt`).
TLS_CERT_KEY = "tls.crt"
TLS_KEY_KEY = "tls.key"
TLS_CA_KEY = "ca.crt"

Json = Mapping[str, Any]


def _sub(obj: Json, key: str) -> Json:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class SecretRef:
    """A key of a Secret in the IMCluster's namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class ClusterRef:
    """A RabbitmqCluster of the RabbitMQ cluster-operator."""

    name: str
    namespace: str


@dataclass(frozen=True)
class PodOverlay:
    """Pod-template fields the user sets, passed through to the pods unchanged (Kubernetes shapes)."""

    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    """imagePullSecrets, nodeSelector, tolerations, affinity, topologySpreadConstraints,
    priorityClassName, serviceAccountName: only those the user set."""


POD_SPEC_FIELDS = ("imagePullSecrets", "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints",
                   "priorityClassName", "serviceAccountName")


@dataclass(frozen=True)
class Ingress:
    class_name: str
    host: str
    annotations: dict[str, str]
    tls_secret: str
    """Secret of the certificate the Ingress controller terminates TLS with; empty: plain HTTP."""


@dataclass(frozen=True)
class HttpRoute:
    parent_refs: list[dict[str, Any]]
    hostnames: list[str]


@dataclass(frozen=True)
class Autoscaling:
    enabled: bool
    min_replicas: int
    max_replicas: int
    target: int
    """Connections per pod (gateway) or CPU utilisation percent (logic)."""


@dataclass(frozen=True)
class Keda:
    enabled: bool
    prometheus_address: str


@dataclass(frozen=True)
class GatewaySpec:
    image: str
    replicas: int
    autoscaling: Autoscaling
    keda: Keda
    service_type: str
    service_port: int
    service_annotations: dict[str, str]
    resources: dict[str, Any]
    heartbeat_interval_s: int
    heartbeat_timeout_s: int
    drain_seconds: int
    """How long a draining gateway may take to hand its connections back after SIGTERM."""
    pre_stop_seconds: int
    """Sleep before SIGTERM so endpoints stop routing new connections to the pod."""
    pod: PodOverlay = field(default_factory=PodOverlay)
    tls_secret: str = ""
    """A `kubernetes.io/tls` Secret: the gateway serves HTTPS and wss:// with it. Empty: plain HTTP."""
    ingress: Ingress | None = None
    http_route: HttpRoute | None = None


@dataclass(frozen=True)
class LogicSpec:
    image: str
    replicas: int
    autoscaling: Autoscaling
    shards: int
    batch_max_size: int
    batch_max_delay_ms: int
    resources: dict[str, Any]
    pod: PodOverlay = field(default_factory=PodOverlay)


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    namespace: str
    generation: int
    gateway: GatewaySpec
    logic: LogicSpec
    rabbitmq_secret: SecretRef | None
    rabbitmq_cluster: ClusterRef | None
    redis: SecretRef
    mysql: SecretRef
    jwt_secret: SecretRef | None
    """None: the operator generates `<name>-jwt` and keeps it."""
    service_monitor: bool
    grpc_tls_secret: str = ""
    """A TLS Secret with `ca.crt`: gateway and logic speak mutual TLS over gRPC with it. Empty: plaintext."""
    monitoring_labels: dict[str, str] = field(default_factory=dict)
    paused: bool = False
    paused_by: str = ""


DEFAULT_GATEWAY_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"memory": "1Gi"},
}
DEFAULT_LOGIC_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"memory": "1Gi"},
}


def _secret_ref(obj: Json, default_key: str) -> SecretRef | None:
    name = obj.get("name")
    return SecretRef(str(name), str(obj.get("key") or default_key)) if name else None


def _image(spec: Json, role: str) -> str:
    explicit = _sub(spec, "images").get(role)
    return str(explicit) if explicit else f"imcluster/{role}:{spec.get('version') or DEFAULT_VERSION}"


def _autoscaling(obj: Json, *, min_r: int, max_r: int, target_key: str, target: int) -> Autoscaling:
    return Autoscaling(
        enabled=bool(obj.get("enabled", False)),
        min_replicas=int(obj.get("minReplicas", min_r)),
        max_replicas=int(obj.get("maxReplicas", max_r)),
        target=int(obj.get(target_key, target)),
    )


def _str_map(obj: Json, key: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _sub(obj, key).items()}


def _pod(role: Json) -> PodOverlay:
    pod = _sub(role, "pod")
    return PodOverlay(
        labels=_str_map(pod, "labels"),
        annotations=_str_map(pod, "annotations"),
        spec={name: pod[name] for name in POD_SPEC_FIELDS if pod.get(name) not in (None, "", [], {})},
    )


def _ingress(gw: Json) -> Ingress | None:
    ingress = _sub(gw, "ingress")
    if not ingress.get("enabled"):
        return None
    return Ingress(class_name=str(ingress.get("className") or ""), host=str(ingress.get("host") or ""),
                   annotations=_str_map(ingress, "annotations"),
                   tls_secret=str(_sub(ingress, "tlsSecretRef").get("name") or ""))


def _http_route(gw: Json) -> HttpRoute | None:
    route = _sub(gw, "httpRoute")
    if not route.get("enabled"):
        return None
    return HttpRoute(parent_refs=[dict(ref) for ref in route.get("parentRefs") or []],
                     hostnames=[str(h) for h in route.get("hostnames") or []])


def parse(body: Json) -> ClusterSpec:
    """Read an IMCluster body (as stored, possibly without defaults) into a `ClusterSpec`."""
    meta = _sub(body, "metadata")
    spec = _sub(body, "spec")
    gw = _sub(spec, "gateway")
    gw_scaling = _sub(gw, "autoscaling")
    gw_service = _sub(gw, "service")
    heartbeat = _sub(gw, "heartbeat")
    keda = _sub(gw_scaling, "keda")
    lg = _sub(spec, "logic")
    batch = _sub(lg, "batch")
    rabbitmq = _sub(spec, "rabbitmq")
    cluster_ref = _sub(rabbitmq, "clusterRef")
    monitoring = _sub(spec, "monitoring")
    namespace = str(meta.get("namespace") or "default")
    annotation_paused = str(_sub(meta, "annotations").get(PAUSED_ANNOTATION, "")).lower() == "true"
    spec_paused = bool(spec.get("paused", False))
    return ClusterSpec(
        name=str(meta.get("name", "")),
        namespace=namespace,
        generation=int(meta.get("generation") or 0),
        gateway=GatewaySpec(
            image=_image(spec, "gateway"),
            replicas=int(gw.get("replicas", 2)),
            autoscaling=_autoscaling(gw_scaling, min_r=2, max_r=10,
                                     target_key="targetConnectionsPerPod", target=5000),
            keda=Keda(
                enabled=bool(keda.get("enabled", False)),
                prometheus_address=str(keda.get("prometheusAddress",
                                                "http://prometheus-operated.monitoring.svc:9090")),
            ),
            service_type=str(gw_service.get("type", "ClusterIP")),
            service_port=int(gw_service.get("port", GATEWAY_PORT)),
            service_annotations=_str_map(gw_service, "annotations"),
            resources=dict(gw.get("resources") or DEFAULT_GATEWAY_RESOURCES),
            heartbeat_interval_s=int(heartbeat.get("intervalSeconds", 30)),
            heartbeat_timeout_s=int(heartbeat.get("timeoutSeconds", 90)),
            drain_seconds=int(gw.get("drainSeconds", 30)),
            pre_stop_seconds=int(gw.get("preStopSeconds", 5)),
            pod=_pod(gw),
            tls_secret=str(_sub(_sub(gw, "tls"), "secretRef").get("name") or ""),
            ingress=_ingress(gw),
            http_route=_http_route(gw),
        ),
        logic=LogicSpec(
            image=_image(spec, "logic"),
            replicas=int(lg.get("replicas", 2)),
            autoscaling=_autoscaling(_sub(lg, "autoscaling"), min_r=2, max_r=6,
                                     target_key="targetCPUUtilizationPercentage", target=70),
            shards=int(lg.get("shards", 16)),
            batch_max_size=int(batch.get("maxSize", 500)),
            batch_max_delay_ms=int(batch.get("maxDelayMs", 10)),
            resources=dict(lg.get("resources") or DEFAULT_LOGIC_RESOURCES),
            pod=_pod(lg),
        ),
        rabbitmq_secret=_secret_ref(_sub(rabbitmq, "secretRef"), RABBITMQ_URL_KEY),
        rabbitmq_cluster=ClusterRef(
            name=str(cluster_ref["name"]), namespace=str(cluster_ref.get("namespace") or namespace),
        ) if cluster_ref.get("name") else None,
        redis=_secret_ref(_sub(_sub(spec, "redis"), "secretRef"), "url") or SecretRef("", "url"),
        mysql=_secret_ref(_sub(_sub(spec, "mysql"), "secretRef"), "url") or SecretRef("", "url"),
        jwt_secret=_secret_ref(_sub(_sub(spec, "auth"), "jwtSecretRef"), JWT_SECRET_KEY),
        service_monitor=bool(monitoring.get("serviceMonitor", True)),
        grpc_tls_secret=str(_sub(_sub(_sub(spec, "grpc"), "tls"), "secretRef").get("name") or ""),
        monitoring_labels=_str_map(monitoring, "labels"),
        paused=spec_paused or annotation_paused,
        paused_by="spec.paused" if spec_paused else (
            f"annotation {PAUSED_ANNOTATION}" if annotation_paused else ""),
    )
