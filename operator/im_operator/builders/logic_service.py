"""The logic Service: the gateways' gRPC target (`IM_LOGIC_ADDR`)."""

from __future__ import annotations

from im_operator.builders.common import Manifest, metadata, selector_labels
from im_operator.spec import GRPC_PORT, Json, parse

__all__ = ["build"]


def build(body: Json) -> Manifest:
    spec = parse(body)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec, "logic", "logic"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(spec, "logic"),
            "ports": [
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP",
                 "appProtocol": "grpc"},
            ],
        },
    }
