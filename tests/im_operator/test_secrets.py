"""Secrets the operator owns: the generated JWT key and the URL derived from a RabbitmqCluster."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from im_operator.builders import jwt_secret, rabbitmq_secret


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_jwt_secret_holds_the_given_key(make_body: Any) -> None:
    secret = jwt_secret.build(make_body(), "s3cr3t")
    assert secret["metadata"]["name"] == "chat-jwt"
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"secret": b64("s3cr3t")}


def test_rabbitmq_secret_holds_the_url(make_body: Any) -> None:
    secret = rabbitmq_secret.build(make_body(), "amqp://u:p@h:5672/")
    assert secret["metadata"]["name"] == "chat-rabbitmq"
    assert secret["data"] == {"url": b64("amqp://u:p@h:5672/")}


@pytest.mark.parametrize(("data", "url"), [
    ({"username": "u", "password": "p", "host": "rabbit.ns.svc", "port": "5672"},
     "amqp://u:p@rabbit.ns.svc:5672/"),
    ({"username": "default_user_a+b/c=", "password": "p@ss:word", "host": "r.ns.svc"},
     "amqp://default_user_a%2Bb%2Fc%3D:p%40ss%3Aword@r.ns.svc:5672/"),
    ({"username": "u", "password": "p", "host": "r.ns.svc", "port": "5671"}, "amqps://u:p@r.ns.svc:5671/"),
])
def test_url_from_the_cluster_operators_default_user(data: dict[str, str], url: str) -> None:
    assert rabbitmq_secret.url_from_default_user({k: b64(v) for k, v in data.items()}) == url


@pytest.mark.parametrize(("annotation", "allowed"), [
    (None, False), ("", False), ("other,team-b", False), ("team-a,team-b", True), ("*", True),
])
def test_another_namespaces_cluster_must_admit_ours(annotation: str | None, allowed: bool) -> None:
    meta: dict[str, Any] = {"name": "rabbit", "namespace": "mq"}
    if annotation is not None:
        meta["annotations"] = {"rabbitmq.com/topology-allowed-namespaces": annotation}
    assert rabbitmq_secret.namespace_allowed({"metadata": meta}, "team-a") is allowed
    assert rabbitmq_secret.namespace_allowed({"metadata": {**meta, "namespace": "team-a"}}, "team-a")
