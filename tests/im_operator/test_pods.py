"""What both Deployments' pods share: the user's pod overlay, no API token, hashes that roll the pods."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from im_operator.builders import Inputs, gateway_deployment, logic_deployment
from im_operator.builders.secret_files import uses
from im_operator.spec import parse

BUILDERS = {"gateway": gateway_deployment.build, "logic": logic_deployment.build}
POD = {
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "nodeSelector": {"node.kubernetes.io/pool": "chat"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "chat", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a", "b"]}]}]}}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                   "whenUnsatisfiable": "DoNotSchedule",
                                   "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "chat"}}}],
    "priorityClassName": "chat-critical",
    "serviceAccountName": "chat-pods",
    "labels": {"team": "messaging", "app.kubernetes.io/instance": "not-ours"},
    "annotations": {"example.com/scrape": "false"},
}


def template(role: str, body: dict[str, Any], inputs: Inputs = Inputs()) -> dict[str, Any]:
    found: dict[str, Any] = BUILDERS[role](body, inputs)["spec"]["template"]
    return found


@pytest.mark.parametrize("role", BUILDERS)
def test_pod_fields_are_passed_through_unchanged_and_stay_valid(make_body: Any, role: str) -> None:
    body = make_body(**{role: {"pod": copy.deepcopy(POD)}})
    deployment = BUILDERS[role](body, Inputs())
    pod = deployment["spec"]["template"]
    for name in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints",
                 "priorityClassName", "serviceAccountName"):
        assert pod["spec"][name] == POD[name], name
    assert pod["metadata"]["labels"]["team"] == "messaging"
    assert pod["metadata"]["annotations"]["example.com/scrape"] == "false"
    kubernetes_validate.validate(deployment, "1.33", strict=True)


@pytest.mark.parametrize("role", BUILDERS)
def test_the_overlay_cannot_break_the_selector_or_the_hashes(make_body: Any, role: str) -> None:
    body = make_body(**{role: {"pod": {"labels": {"app.kubernetes.io/instance": "x"},
                                       "annotations": {"imcluster.io/config-hash": "x"}}}})
    deployment = BUILDERS[role](body, Inputs())
    meta = deployment["spec"]["template"]["metadata"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= meta["labels"].items()
    assert meta["annotations"]["imcluster.io/config-hash"] != "x"


@pytest.mark.parametrize("role", BUILDERS)
def test_no_pod_mounts_a_service_account_token_and_the_default_spread_stays(make_body: Any, role: str) -> None:
    pod = template(role, make_body())["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod and "imagePullSecrets" not in pod
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_an_invalid_pod_field_is_caught_by_the_kubernetes_schema(make_body: Any) -> None:
    body = make_body(gateway={"pod": {"tolerations": [{"key": "k", "operator": "Equal", "effect": 7}]}})
    with pytest.raises(kubernetes_validate.ValidationError, match="effect"):
        kubernetes_validate.validate(gateway_deployment.build(body), "1.33", strict=True)


def digests(body: dict[str, Any], **changed: str) -> Inputs:
    return Inputs(secret_digests={use.field: changed.get(use.field, "v1") for use in uses(parse(body))})


def secret_hash(role: str, body: dict[str, Any], inputs: Inputs) -> str:
    return str(template(role, body, inputs)["metadata"]["annotations"]["imcluster.io/secret-hash"])


def test_a_rotated_secret_rolls_exactly_the_roles_that_read_it(make_body: Any) -> None:
    body = make_body()
    before = {role: secret_hash(role, body, digests(body)) for role in BUILDERS}
    mysql = digests(body, **{"spec.mysql.secretRef": "v2"})
    assert secret_hash("logic", body, mysql) != before["logic"]
    assert secret_hash("gateway", body, mysql) == before["gateway"]  # the gateway never reads MySQL
    redis = digests(body, **{"spec.redis.secretRef": "v2"})
    assert all(secret_hash(role, body, redis) != before[role] for role in BUILDERS)
    # The config hash is about settings and references, not content:
    assert (template("logic", body, mysql)["metadata"]["annotations"]["imcluster.io/config-hash"]
            == template("logic", body, digests(body))["metadata"]["annotations"]["imcluster.io/config-hash"])
