"""What the operator sets in the pods is exactly what `im-gateway` and `im-logic` read (issue 3 contract)."""

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from im.apps.gateway import GatewayConfig
from im.apps.logic import LogicConfig
from im.config import file_variable
from im_operator.builders import build_all

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def variables(field: dataclasses.Field[Any]) -> Iterator[str]:
    yield field.metadata["env"]
    if file_env := file_variable(field.metadata):
        yield file_env


def settings_of(config_type: type) -> tuple[set[str], list[set[str]]]:
    """Every variable the process reads, and for each required setting the variables that give it."""
    fields = dataclasses.fields(config_type)
    names = {name for f in fields for name in variables(f)}
    required = [set(variables(f)) for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
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
    assert all(either & given for either in required), [e for e in required if not e & given]
    assert given <= known | shared_with_the_other_role, given - known - shared_with_the_other_role
    assert (role == "logic") == ("IM_MYSQL_URL_FILE" in given), "only logic gets the database credentials"
    secret_settings = {f.metadata["env"] for f in dataclasses.fields(config_type) if file_variable(f.metadata)}
    assert not secret_settings & given, "credentials come as files, never in the environment"
