"""What the operator sets in the pods is exactly what `im-gateway` and `im-logic` read (issue 3 contract)."""

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from im.apps.gateway import GatewayConfig
from im.apps.logic import LogicConfig
from im_operator.builders import build_all

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def settings_of(config_type: type) -> tuple[set[str], set[str]]:
    fields = dataclasses.fields(config_type)
    names = {f.metadata["env"] for f in fields}
    required = {f.metadata["env"] for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return names, required


def clusters() -> list[dict[str, Any]]:
    found = []
    for path in sorted(EXAMPLES.glob("imcluster-*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "IMCluster":
                doc["metadata"].setdefault("uid", "uid-1")
                found.append(doc)
    return found


@pytest.mark.parametrize("cluster", clusters(), ids=lambda c: c["metadata"]["name"])
@pytest.mark.parametrize("role, config_type", [("gateway", GatewayConfig), ("logic", LogicConfig)])
def test_every_variable_a_pod_gets_is_a_setting_and_every_required_one_is_set(
    cluster: dict[str, Any], role: str, config_type: type
) -> None:
    children = build_all(cluster)
    config_map = next(c for c in children if c["kind"] == "ConfigMap" and c["metadata"]["name"].endswith("-config"))
    deployment = next(c for c in children
                      if c["kind"] == "Deployment" and c["metadata"]["name"].endswith(f"-{role}"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [f"im-{role}"]
    given = {env["name"] for env in container.get("env", [])}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == config_map["metadata"]["name"]
        given |= set(config_map["data"])
    known, required = settings_of(config_type)
    shared_with_the_other_role = settings_of(LogicConfig if role == "gateway" else GatewayConfig)[0]
    assert required <= given
    assert given <= known | shared_with_the_other_role, given - known - shared_with_the_other_role
    assert (role == "logic") == ("IM_MYSQL_URL" in given), "only logic gets the database credentials"
