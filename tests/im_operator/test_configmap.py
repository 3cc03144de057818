"""The ConfigMap carries every non-secret IM_* setting of the issue-3 contract."""

from __future__ import annotations

from typing import Any

from im_operator.builders import configmap


def test_default_settings(make_body: Any) -> None:
    cm = configmap.build(make_body())
    assert cm["metadata"]["name"] == "chat-config"
    assert cm["metadata"]["namespace"] == "chat"
    assert cm["data"] == {
        "IM_HOST": "0.0.0.0",
        "IM_GRPC_HOST": "0.0.0.0",
        "IM_PORT": "8080",
        "IM_GRPC_PORT": "50051",
        "IM_METRICS_PORT": "9100",
        "IM_LOGIC_ADDR": "chat-logic:50051",
        "IM_SHARDS": "16",
        "IM_BATCH_MAX_SIZE": "500",
        "IM_BATCH_MAX_DELAY_MS": "10",
        "IM_HEARTBEAT_INTERVAL": "30",
        "IM_HEARTBEAT_TIMEOUT": "90",
        "IM_DRAIN_SECONDS": "30",
    }


def test_spec_values_reach_the_settings(make_body: Any) -> None:
    cm = configmap.build(make_body(
        logic={"shards": 64, "batch": {"maxSize": 2000, "maxDelayMs": 0}},
        gateway={"heartbeat": {"intervalSeconds": 10, "timeoutSeconds": 25}}))
    assert cm["data"]["IM_SHARDS"] == "64"
    assert cm["data"]["IM_BATCH_MAX_SIZE"] == "2000"
    assert cm["data"]["IM_BATCH_MAX_DELAY_MS"] == "0"
    assert (cm["data"]["IM_HEARTBEAT_INTERVAL"], cm["data"]["IM_HEARTBEAT_TIMEOUT"]) == ("10", "25")


def test_no_secret_ever_lands_in_the_configmap(make_body: Any) -> None:
    data = configmap.build(make_body())["data"]
    assert not {"IM_MYSQL_URL", "IM_REDIS_URL", "IM_RABBITMQ_URL", "IM_JWT_SECRET"} & set(data)
