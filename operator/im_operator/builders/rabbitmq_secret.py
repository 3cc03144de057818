"""`IM_RABBITMQ_URL` composed from a RabbitmqCluster's `<name>-default-user` Secret.

The cluster-operator's default-user Secret carries `username`, `password`, `host` and `port`
but no URL, so the operator keeps one derived Secret per IMCluster.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import quote

from im_operator.builders.common import Manifest, watched_metadata
from im_operator.spec import RABBITMQ_URL_KEY, Json, parse

__all__ = ["build", "url_from_default_user", "namespace_allowed", "REQUIRED_KEYS", "ALLOWED_NAMESPACES_ANNOTATION"]

REQUIRED_KEYS = ("username", "password", "host")
ALLOWED_NAMESPACES_ANNOTATION = "rabbitmq.com/topology-allowed-namespaces"


def namespace_allowed(cluster: Json, namespace: str) -> bool:
    """Whether an IMCluster in `namespace` may use this RabbitmqCluster's default user.

    Copying credentials across namespaces needs the cluster owner's consent, given the way the
    RabbitMQ topology operator asks for it: a comma-separated list of namespaces, or `*`.
    """
    meta = cluster.get("metadata") or {}
    if meta.get("namespace") in (None, namespace):
        return True
    allowed = str((meta.get("annotations") or {}).get(ALLOWED_NAMESPACES_ANNOTATION, ""))
    names = {name.strip() for name in allowed.split(",")}
    return "*" in names or namespace in names


def url_from_default_user(data: Mapping[str, str]) -> str:
    """`data` is the Secret's base64 `data` map."""
    plain = {key: base64.b64decode(value).decode() for key, value in data.items()}
    port = plain.get("port") or "5672"
    scheme = "amqps" if port == "5671" else "amqp"
    user, password = quote(plain["username"], safe=""), quote(plain["password"], safe="")
    return f"{scheme}://{user}:{password}@{plain['host']}:{port}/"


def build(body: Json, url: str) -> Manifest:
    spec = parse(body)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": watched_metadata(spec, "rabbitmq"),
        "type": "Opaque",
        "data": {RABBITMQ_URL_KEY: base64.b64encode(url.encode()).decode()},
    }
