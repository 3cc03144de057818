"""PodDisruptionBudgets let evictions take one pod of a role at a time."""

from __future__ import annotations

from typing import Any

from im_operator.builders import pdb


def test_one_budget_per_role(make_body: Any) -> None:
    for build, component in ((pdb.gateway, "gateway"), (pdb.logic, "logic")):
        budget = build(make_body())
        assert budget["apiVersion"] == "policy/v1"
        assert budget["metadata"]["name"] == f"chat-{component}"
        assert budget["spec"]["maxUnavailable"] == 1
        assert budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
        assert budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "chat"
