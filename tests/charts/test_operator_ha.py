"""Operator HA and observability in the chart: replicas with kopf peering, a PDB, metrics and their
ServiceMonitor."""

from __future__ import annotations

from helm_python import chart as helm

from tests.charts.chart_helpers import NAMESPACE, RELEASE, by_kind, one, render

FULLNAME = f"{RELEASE}-imcluster"


def args_of(objects: list[dict[str, object]]) -> list[str]:
    deployment = one(objects, "Deployment")
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]  # type: ignore[index]
    return args


def test_one_replica_runs_standalone_without_peering_or_pdb(chart: helm.Chart) -> None:
    objects = render(chart)
    assert not [a for a in args_of(objects) if a.startswith("--peering")]
    assert not by_kind(objects, "ClusterKopfPeering") and not by_kind(objects, "PodDisruptionBudget")


def test_several_replicas_peer_with_one_leader_and_a_pdb(chart: helm.Chart) -> None:
    objects = render(chart, {"operator": {"replicas": 3}})
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert f"--peering={FULLNAME}" in args_of(objects)
    peering = one(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == FULLNAME and peering["apiVersion"] == "kopf.dev/v1"
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"][
        "labels"].items()
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["IM_OPERATOR_PEERING_LIFETIME_SECONDS"] == "60"


def test_a_namespaced_operator_peers_in_each_watched_namespace(chart: helm.Chart) -> None:
    objects = render(chart, {"operator": {"replicas": 2, "peering": "im", "watchNamespaces": ["a", "b"]}})
    peerings = by_kind(objects, "KopfPeering")
    assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings) == [("a", "im"), ("b", "im")]
    assert not by_kind(objects, "ClusterKopfPeering")
    assert "--peering=im" in args_of(objects)


def test_operator_metrics_are_served_and_can_be_scraped_by_a_service_monitor(chart: helm.Chart) -> None:
    assert not by_kind(render(chart), "ServiceMonitor")
    objects = render(chart, {"monitoring": {"operatorServiceMonitor": {"enabled": True, "labels": {"release": "p"}}}})
    assert "--metrics-port=9100" in args_of(objects)
    service = one(objects, "Service")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["metrics"] == 9100
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "p"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
