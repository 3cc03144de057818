"""Status and conditions computed from what the operator observes."""

from __future__ import annotations

from typing import Any

from im_operator import status
from im_operator.spec import parse


def deployment(desired: int, ready: int, updated: int | None = None, generation: int = 1,
               observed: int = 1, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": desired},
        "status": {"observedGeneration": observed, "replicas": desired, "readyReplicas": ready,
                   "updatedReplicas": desired if updated is None else updated,
                   "conditions": conditions or []},
    }


def by_type(conds: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in conds}


def test_all_ready(make_body: Any) -> None:
    spec = parse(make_body())
    observed = status.Observed(gateway=deployment(2, 2), logic=deployment(2, 2))
    assert by_type(status.conditions(spec, observed, None)) == {
        "Ready": ("True", "AllReplicasReady"),
        "Progressing": ("False", "RolloutComplete"),
        "Degraded": ("False", "AsExpected"),
    }


def test_conditions_have_the_kubernetes_shape(body: dict[str, Any]) -> None:
    spec = parse(body)
    conds = status.merge_conditions([], status.conditions(spec, status.Observed(), None), "2026-01-01T00:00:00Z")
    for cond in conds:
        assert set(cond) == {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}
        assert cond["reason"][0].isupper() and " " not in cond["reason"]
        assert cond["observedGeneration"] == 1


def test_a_rollout_in_progress(make_body: Any) -> None:
    spec = parse(make_body())
    observed = status.Observed(gateway=deployment(3, 2, updated=1), logic=deployment(2, 2, generation=2))
    conds = by_type(status.conditions(spec, observed, None))
    assert conds["Progressing"] == ("True", "RollingOut")
    assert conds["Ready"] == ("False", "ReplicasNotReady")


def test_a_problem_degrades_and_blocks(make_body: Any) -> None:
    spec = parse(make_body())
    problem = status.Problem("SecretNotFound", "Secret chat/x does not exist")
    conds = status.conditions(spec, status.Observed(), problem)
    assert by_type(conds) == {
        "Ready": ("False", "SecretNotFound"),
        "Progressing": ("False", "SecretNotFound"),
        "Degraded": ("True", "SecretNotFound"),
    }
    assert "chat/x" in next(c for c in conds if c["type"] == "Degraded")["message"]


def test_a_stuck_rollout_degrades(make_body: Any) -> None:
    stuck = deployment(2, 1, conditions=[{"type": "Progressing", "status": "False",
                                          "reason": "ProgressDeadlineExceeded", "message": "too slow"}])
    conds = by_type(status.conditions(parse(make_body()), status.Observed(gateway=stuck, logic=deployment(1, 1)),
                                      None))
    assert conds["Degraded"] == ("True", "RolloutStuck")


def test_paused_says_so(make_body: Any) -> None:
    conds = status.conditions(parse(make_body(paused=True)), status.Observed(), None)
    progressing = next(c for c in conds if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "Paused")
    assert "spec.paused" in progressing["message"]


def test_transition_time_moves_only_when_the_status_changes(make_body: Any) -> None:
    spec = parse(make_body())
    first = status.merge_conditions([], status.conditions(spec, status.Observed(), None), "T1")
    same = status.merge_conditions(first, status.conditions(spec, status.Observed(), None), "T2")
    assert [c["lastTransitionTime"] for c in same] == ["T1", "T1", "T1"]
    ready = status.Observed(gateway=deployment(2, 2), logic=deployment(2, 2))
    moved = status.merge_conditions(same, status.conditions(spec, ready, None), "T3")
    assert {c["type"]: c["lastTransitionTime"] for c in moved} == {
        "Ready": "T3", "Progressing": "T3", "Degraded": "T1"}


def test_transitions_are_what_deserves_an_event(make_body: Any) -> None:
    spec = parse(make_body())
    before = status.merge_conditions([], status.conditions(spec, status.Observed(), None), "T1")
    assert status.transitions(before, before) == []
    ready = status.Observed(gateway=deployment(2, 2), logic=deployment(2, 2))
    after = status.merge_conditions(before, status.conditions(spec, ready, None), "T2")
    assert {c["reason"] for c in status.transitions(before, after)} == {"AllReplicasReady", "RolloutComplete"}
    assert len(status.transitions([], before)) == 3


def test_connections_come_from_the_gateway_autoscaler() -> None:
    def hpa(value: str, replicas: int) -> dict[str, Any]:
        return {"status": {"currentReplicas": replicas, "currentMetrics": [{"type": "Pods", "pods": {
            "metric": {"name": "im_gateway_connections"}, "current": {"averageValue": value}}}]}}
    assert status.connections(hpa("1500", 4)) == 6000
    assert status.connections(hpa("2500m", 2)) == 5
    assert status.connections(hpa("1k", 3)) == 3000
    assert status.connections({"status": {}}) is None
    assert status.connections(None) is None


def test_observed_generation_holds_while_paused(make_body: Any) -> None:
    body = make_body(paused=True)
    body["metadata"]["generation"] = 5
    spec = parse(body)
    st = status.build_status(spec, status.Observed(), [], {"observedGeneration": 3})
    assert st["observedGeneration"] == 3 and st["paused"] is True
    body["spec"]["paused"] = False
    assert status.build_status(parse(body), status.Observed(), [], {"observedGeneration": 3})[
        "observedGeneration"] == 5


def test_replica_counts(make_body: Any) -> None:
    st = status.build_status(parse(make_body()), status.Observed(gateway=deployment(3, 1)), [], {})
    assert st["gateway"] == {"desiredReplicas": 3, "replicas": 3, "readyReplicas": 1, "updatedReplicas": 3}
    assert st["logic"]["readyReplicas"] == 0
    assert st["connections"] == 0
