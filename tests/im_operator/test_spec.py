"""Reading an IMCluster body into a typed spec, with the CRD's defaults."""

from __future__ import annotations

from typing import Any

from im_operator.spec import ClusterRef, SecretRef, parse


def test_defaults_fill_an_empty_spec(make_body: Any) -> None:
    spec = parse(make_body())
    assert spec.gateway.image == "imcluster/gateway:0.1.0"
    assert spec.logic.image == "imcluster/logic:0.1.0"
    assert (spec.gateway.replicas, spec.logic.replicas) == (2, 2)
    assert not spec.gateway.autoscaling.enabled and not spec.logic.autoscaling.enabled
    assert spec.gateway.autoscaling.target == 5000
    assert (spec.gateway.heartbeat_interval_s, spec.gateway.heartbeat_timeout_s) == (30, 90)
    assert (spec.logic.shards, spec.logic.batch_max_size, spec.logic.batch_max_delay_ms) == (16, 500, 10)
    assert spec.rabbitmq_secret == SecretRef("chat-rabbitmq", "url")
    assert spec.rabbitmq_cluster is None
    assert spec.mysql == SecretRef("chat-mysql", "url")
    assert spec.jwt_secret is None
    assert spec.service_monitor is True
    assert not spec.paused


def test_images_override_the_version(make_body: Any) -> None:
    spec = parse(make_body(version="1.2.3", images={"logic": "reg.example/logic@sha256:abc"}))
    assert spec.gateway.image == "imcluster/gateway:1.2.3"
    assert spec.logic.image == "reg.example/logic@sha256:abc"


def test_a_cluster_ref_defaults_to_the_imclusters_namespace(make_body: Any) -> None:
    spec = parse(make_body(rabbitmq={"clusterRef": {"name": "rabbit"}}))
    assert spec.rabbitmq_cluster == ClusterRef("rabbit", "chat")
    assert spec.rabbitmq_secret is None


def test_paused_by_spec_or_by_annotation(make_body: Any) -> None:
    assert parse(make_body(paused=True)).paused_by == "spec.paused"
    body = make_body()
    body["metadata"]["annotations"] = {"imcluster.io/paused": "True"}
    assert parse(body).paused and "annotation" in parse(body).paused_by
    body["metadata"]["annotations"] = {"imcluster.io/paused": "false"}
    assert not parse(body).paused
