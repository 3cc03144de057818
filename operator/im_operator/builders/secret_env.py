"""Which Secret key feeds which `IM_*` variable, for both roles."""

from __future__ import annotations

from typing import Any

from im_operator.builders.common import child_name
from im_operator.spec import JWT_SECRET_KEY, RABBITMQ_URL_KEY, ClusterSpec, SecretRef

__all__ = ["rabbitmq_ref", "jwt_ref", "refs", "env", "GATEWAY_SECRETS", "LOGIC_SECRETS"]

# Least privilege: the gateway reaches MySQL only through logic's gRPC, so it never sees that URL.
GATEWAY_SECRETS = ("IM_RABBITMQ_URL", "IM_REDIS_URL", "IM_JWT_SECRET")
LOGIC_SECRETS = ("IM_MYSQL_URL", "IM_RABBITMQ_URL", "IM_REDIS_URL", "IM_JWT_SECRET")


def rabbitmq_ref(spec: ClusterSpec) -> SecretRef:
    """The user's Secret, or the one the operator derives from a RabbitmqCluster's default user."""
    return spec.rabbitmq_secret or SecretRef(child_name(spec, "rabbitmq"), RABBITMQ_URL_KEY)


def jwt_ref(spec: ClusterSpec) -> SecretRef:
    return spec.jwt_secret or SecretRef(child_name(spec, "jwt"), JWT_SECRET_KEY)


def refs(spec: ClusterSpec) -> dict[str, SecretRef]:
    return {
        "IM_MYSQL_URL": spec.mysql,
        "IM_RABBITMQ_URL": rabbitmq_ref(spec),
        "IM_REDIS_URL": spec.redis,
        "IM_JWT_SECRET": jwt_ref(spec),
    }


def env(spec: ClusterSpec, names: tuple[str, ...]) -> list[dict[str, Any]]:
    by_name = refs(spec)
    return [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": by_name[name].name, "key": by_name[name].key}}}
        for name in names
    ]
