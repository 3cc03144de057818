"""Only gateway pods reach logic's gRPC port; clients reach the gateways' client port only."""

from __future__ import annotations

from typing import Any

from im_operator.builders import gateway_deployment, logic_deployment, network_policy


def test_only_gateways_reach_logic_grpc(make_body: Any) -> None:
    body = make_body()
    policy = network_policy.logic(body)
    logic_labels = logic_deployment.build(body)["spec"]["template"]["metadata"]["labels"]
    gateway_labels = gateway_deployment.build(body)["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= logic_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    grpc_rule = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == 50051)
    assert len(grpc_rule["from"]) == 1
    peer = grpc_rule["from"][0]["podSelector"]["matchLabels"]
    assert peer.items() <= gateway_labels.items()
    assert not peer.items() <= logic_labels.items()


def test_metrics_stay_reachable_for_scrapers(make_body: Any) -> None:
    rules = network_policy.logic(make_body())["spec"]["ingress"]
    metrics = next(r for r in rules if r["ports"][0]["port"] == 9100)
    assert metrics["from"] == [{"namespaceSelector": {}}]


def test_gateways_admit_clients_on_the_client_port_and_scrapers_on_metrics(make_body: Any) -> None:
    body = make_body()
    policy = network_policy.gateway(body)
    gateway_labels = gateway_deployment.build(body)["spec"]["template"]["metadata"]["labels"]
    assert policy["metadata"]["name"] == "chat-gateway"
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= gateway_labels.items()
    assert sorted(r["ports"][0]["port"] for r in policy["spec"]["ingress"]) == [8080, 9100]
