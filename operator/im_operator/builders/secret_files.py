"""Every Secret a pod reads, declared once: which keys, mounted where, announced by which `IM_*` variable.

The pods get credentials as files of one read-only projected volume, never as environment
variables, and find them through the `IM_*_FILE` variants of their settings (docs/configuration.md).
The same declarations tell the reconciler which Secrets to check, hash and watch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from im_operator.builders.common import child_name
from im_operator.spec import (
    JWT_SECRET_KEY,
    RABBITMQ_URL_KEY,
    TLS_CA_KEY,
    TLS_CERT_KEY,
    TLS_KEY_KEY,
    ClusterSpec,
    SecretRef,
)

__all__ = ["SecretUse", "MOUNT_PATH", "VOLUME", "RABBITMQ_FIELD", "JWT_FIELD", "uses", "volume", "mount", "env",
           "rabbitmq_ref", "jwt_ref"]

MOUNT_PATH = "/etc/imcluster/secrets"
VOLUME = "secrets"
FILE_MODE = 0o440
"""Owner root, group the pod's fsGroup: readable by the IM process only."""

RABBITMQ_FIELD = "spec.rabbitmq.secretRef"
JWT_FIELD = "spec.auth.jwtSecretRef"
GATEWAY, LOGIC = "gateway", "logic"
BOTH = frozenset({GATEWAY, LOGIC})


@dataclass(frozen=True)
class SecretUse:
    field: str
    """Where the spec names it (for error messages), or the child the operator makes."""
    secret: str
    files: tuple[tuple[str, str, str], ...]
    """(Secret key, path under MOUNT_PATH, the `IM_*` variable that points at it)."""
    roles: frozenset[str]
    owned: bool = False
    """Made by the operator (generated JWT key, URL derived from a RabbitmqCluster)."""

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _, _ in self.files)


def rabbitmq_ref(spec: ClusterSpec) -> SecretRef:
    """The user's Secret, or the one the operator derives from a RabbitmqCluster's default user."""
    return spec.rabbitmq_secret or SecretRef(child_name(spec, "rabbitmq"), RABBITMQ_URL_KEY)


def jwt_ref(spec: ClusterSpec) -> SecretRef:
    return spec.jwt_secret or SecretRef(child_name(spec, "jwt"), JWT_SECRET_KEY)


def _credential(field: str, ref: SecretRef, variable: str, roles: frozenset[str], owned: bool = False) -> SecretUse:
    return SecretUse(field, ref.name, ((ref.key, variable, f"{variable}_FILE"),), roles, owned)


def _tls(field: str, secret: str, directory: str, variables: dict[str, str], roles: frozenset[str]) -> SecretUse:
    return SecretUse(field, secret, tuple((key, f"{directory}/{key}", variable) for key, variable in variables.items()),
                     roles)


def uses(spec: ClusterSpec) -> list[SecretUse]:
    """Every Secret the pods of this IMCluster read. The gateway reaches MySQL only through logic's gRPC,
    so it never sees that URL (least privilege)."""
    found = [
        _credential("spec.mysql.secretRef", spec.mysql, "IM_MYSQL_URL", frozenset({LOGIC})),
        _credential("spec.redis.secretRef", spec.redis, "IM_REDIS_URL", BOTH),
        _credential(RABBITMQ_FIELD, rabbitmq_ref(spec), "IM_RABBITMQ_URL", BOTH, owned=spec.rabbitmq_secret is None),
        _credential(JWT_FIELD, jwt_ref(spec), "IM_JWT_SECRET", BOTH, owned=spec.jwt_secret is None),
    ]
    if spec.gateway.tls_secret:
        found.append(_tls("spec.gateway.tls.secretRef", spec.gateway.tls_secret, "tls",
                          {TLS_CERT_KEY: "IM_TLS_CERT_FILE", TLS_KEY_KEY: "IM_TLS_KEY_FILE"}, frozenset({GATEWAY})))
    if spec.grpc_tls_secret:
        found.append(_tls("spec.grpc.tls.secretRef", spec.grpc_tls_secret, "grpc-tls", {
            TLS_CERT_KEY: "IM_GRPC_TLS_CERT_FILE", TLS_KEY_KEY: "IM_GRPC_TLS_KEY_FILE",
            TLS_CA_KEY: "IM_GRPC_TLS_CA_FILE"}, BOTH))
    return found


def _for(spec: ClusterSpec, role: str) -> list[SecretUse]:
    return [use for use in uses(spec) if role in use.roles]


def volume(spec: ClusterSpec, role: str) -> dict[str, Any]:
    return {"name": VOLUME, "projected": {"defaultMode": FILE_MODE, "sources": [
        {"secret": {"name": use.secret, "items": [{"key": key, "path": path} for key, path, _ in use.files]}}
        for use in _for(spec, role)
    ]}}


def mount() -> dict[str, Any]:
    return {"name": VOLUME, "mountPath": MOUNT_PATH, "readOnly": True}


def env(spec: ClusterSpec, role: str) -> list[dict[str, Any]]:
    return [{"name": variable, "value": f"{MOUNT_PATH}/{path}"}
            for use in _for(spec, role) for _, path, variable in use.files]
