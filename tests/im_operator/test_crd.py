"""The IMCluster CRD: a valid, structural schema; the examples validate against it; its defaults
are the operator's defaults."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from im_operator.spec import parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    found: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return found


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Like `kubectl apply --validate=strict`: unknown fields are errors, not silently pruned."""
    schema = copy.deepcopy(schema)

    def walk(node: dict[str, Any]) -> None:
        if "properties" in node:
            node.setdefault("additionalProperties", False)
            for child in node["properties"].values():
                walk(child)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"])
        if "items" in node:
            walk(node["items"])

    walk(schema)
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """What the API server's structural defaulting does on create."""
    if not isinstance(value, dict) or "properties" not in schema:
        return value
    result = dict(value)
    for key, sub in schema["properties"].items():
        if key not in result and "default" in sub:
            result[key] = copy.deepcopy(sub["default"])
        if key in result:
            result[key] = apply_defaults(sub, result[key])
    return result


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{key}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}[*]")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")


def load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((EXAMPLES / name).read_text()) if doc]


def test_the_crd_is_a_valid_kubernetes_object(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, "1.33", strict=True)


def test_names_version_and_subresources(crd: dict[str, Any]) -> None:
    assert crd["metadata"]["name"] == "imclusters.imcluster.io"
    assert crd["spec"]["group"] == "imcluster.io"
    assert crd["spec"]["scope"] == "Namespaced"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("IMCluster", "imclusters", ["imc"])
    [version] = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns(crd: dict[str, Any]) -> None:
    columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Gateways"] == ".status.gateway.readyReplicas"
    assert columns["Connections"] == ".status.connections"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_the_schema_is_structural(crd: dict[str, Any]) -> None:
    for path, node in nodes(schema_of(crd)):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        if node.get("type") == "object":
            assert not ("properties" in node and "additionalProperties" in node), path
        if "default" in node and node.get("type") == "object":
            assert node["default"] == {}, path


def test_cel_rules_guard_fields_that_depend_on_each_other(crd: dict[str, Any]) -> None:
    rules = {path: [r["rule"] for r in node["x-kubernetes-validations"]]
             for path, node in nodes(schema_of(crd)) if "x-kubernetes-validations" in node}
    assert "self.minReplicas <= self.maxReplicas" in rules[".spec.gateway.autoscaling"]
    assert "self.minReplicas <= self.maxReplicas" in rules[".spec.logic.autoscaling"]
    assert rules[".spec.rabbitmq"] == ["has(self.secretRef) != has(self.clusterRef)"]
    assert rules[".spec.gateway.heartbeat"] == ["self.timeoutSeconds > self.intervalSeconds"]


def test_no_field_can_carry_a_credential_inline(crd: dict[str, Any]) -> None:
    for path, _ in nodes(schema_of(crd)["properties"]["spec"], ".spec"):
        leaf = path.rsplit(".", 1)[-1].lower()
        assert leaf not in {"url", "password", "username", "token", "secret", "dsn"}, path


@pytest.mark.parametrize("name", ["imcluster-minimal.yaml", "imcluster-full.yaml"])
def test_examples_are_valid_imclusters(crd: dict[str, Any], name: str) -> None:
    [body] = load(name)
    jsonschema.validate(body, strict(schema_of(crd)))
    jsonschema.validate(apply_defaults(schema_of(crd), body), strict(schema_of(crd)))


def test_example_secrets_are_valid_and_hold_placeholders() -> None:
    secrets = load("secrets.yaml")
    assert {s["metadata"]["name"] for s in secrets} == {
        "chat-mysql", "chat-redis", "chat-rabbitmq", "chat-jwt", "chat-tls", "chat-grpc-tls"}
    for secret in secrets:
        kubernetes_validate.validate(secret, "1.33", strict=True)
        assert all("CHANGE-ME" in value for value in secret["stringData"].values())


def test_examples_name_only_secrets_the_secrets_file_provides() -> None:
    provided = {(s["metadata"]["name"], key) for s in load("secrets.yaml") for key in s["stringData"]}
    minimal = parse(load("imcluster-minimal.yaml")[0])
    for ref in (minimal.mysql, minimal.redis, minimal.rabbitmq_secret):
        assert ref is not None and (ref.name, ref.key) in provided
    full = parse(load("imcluster-full.yaml")[0])
    for ref in (full.mysql, full.redis, full.jwt_secret):
        assert ref is not None and (ref.name, ref.key) in provided
    assert {(full.gateway.tls_secret, "tls.key"), (full.grpc_tls_secret, "ca.crt")} <= provided


@pytest.mark.parametrize(("change", "field"), [
    (lambda s: s.pop("mysql"), "mysql"),
    (lambda s: s.update(gateway={"service": {"type": "ExternalName"}}), "ExternalName"),
    (lambda s: s.update(gateway={"replicas": -1}), "-1"),
    (lambda s: s.update(logic={"shards": 0}), "0"),
    (lambda s: s["mysql"]["secretRef"].pop("name"), "name"),
    (lambda s: s["rabbitmq"].update(url="amqp://user:password@host"), "url"),
    (lambda s: s.update(version="not a tag!"), "not a tag!"),
])
def test_bad_specs_are_rejected(crd: dict[str, Any], make_body: Any, change: Any, field: str) -> None:
    body = make_body()
    change(body["spec"])
    with pytest.raises(jsonschema.ValidationError, match=field):
        jsonschema.validate(body, strict(schema_of(crd)))


@pytest.mark.parametrize("name", ["imcluster-minimal.yaml", "imcluster-full.yaml"])
def test_crd_defaults_are_the_operators_defaults(crd: dict[str, Any], name: str) -> None:
    [body] = load(name)
    assert parse(apply_defaults(schema_of(crd), body)) == parse(body)


def test_crd_defaults_of_an_empty_spec_are_the_operators_defaults(crd: dict[str, Any], make_body: Any) -> None:
    body = make_body()
    defaulted = apply_defaults(schema_of(crd), body)
    assert defaulted["spec"]["gateway"]["autoscaling"]["maxReplicas"] == 10  # defaults did apply
    assert parse(defaulted) == parse(body)


def fields(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named field of the schema (what `kubectl explain` lists), nested through arrays."""
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}.{key}", sub
        yield from fields(sub, f"{path}.{key}")
    if "items" in schema:
        yield from fields(schema["items"], f"{path}[]")


def test_every_field_of_the_schema_is_described(crd: dict[str, Any]) -> None:
    named = list(fields(schema_of(crd)))
    assert len(named) > 100
    undescribed = [path for path, node in named if not str(node.get("description", "")).strip()]
    assert not undescribed, f"{len(undescribed)} of {len(named)} fields lack a description: {undescribed}"


def at(value: Any, path: str) -> Any:
    """The value at a schema path like `.spec.gateway.autoscaling`, or None where it is absent."""
    for key in path.strip(".").split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def cel_rules(crd: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(path, rule["rule"], rule["message"]) for path, node in nodes(schema_of(crd))
            for rule in node.get("x-kubernetes-validations", [])]


def evaluate(rule: str, value: Any) -> bool:
    import celpy

    env = celpy.Environment()
    program = env.program(env.compile(rule))
    return bool(program.evaluate({"self": celpy.json_to_cel(value)}))


# For every rule, a value at its path that must be refused (a new rule without one fails the test).
BAD = {
    ("self.minReplicas <= self.maxReplicas", ".spec.gateway.autoscaling"): {"minReplicas": 5, "maxReplicas": 2},
    ("!has(self.keda) || !self.keda.enabled || self.enabled", ".spec.gateway.autoscaling"):
        {"enabled": False, "minReplicas": 2, "maxReplicas": 3, "keda": {"enabled": True}},
    ("!has(self.tlsSecretRef) || has(self.host)", ".spec.gateway.ingress"):
        {"enabled": True, "tlsSecretRef": {"name": "edge-tls"}},
    ("!self.enabled || (has(self.parentRefs) && size(self.parentRefs) > 0)", ".spec.gateway.httpRoute"):
        {"enabled": True, "parentRefs": []},
    ("self.timeoutSeconds > self.intervalSeconds", ".spec.gateway.heartbeat"):
        {"intervalSeconds": 30, "timeoutSeconds": 30},
    ("self.minReplicas <= self.maxReplicas", ".spec.logic.autoscaling"): {"minReplicas": 7, "maxReplicas": 6},
    ("has(self.secretRef) != has(self.clusterRef)", ".spec.rabbitmq"):
        {"secretRef": {"name": "a"}, "clusterRef": {"name": "b"}},
}


def test_every_cel_rule_has_a_spec_it_must_refuse(crd: dict[str, Any]) -> None:
    assert {(rule, path) for path, rule, _ in cel_rules(crd)} == set(BAD)


@pytest.mark.parametrize(("rule", "path"), list(BAD))
def test_each_cel_rule_refuses_its_bad_spec_and_accepts_every_example(
        crd: dict[str, Any], make_body: Any, rule: str, path: str) -> None:
    assert evaluate(rule, BAD[rule, path]) is False
    checked = 0
    for body in [*load("imcluster-minimal.yaml"), *load("imcluster-full.yaml"), make_body()]:
        # The API server evaluates rules on the defaulted object, where the field is present.
        value = at(apply_defaults(schema_of(crd), body), path)
        if value is not None:
            assert evaluate(rule, value) is True, (body["metadata"]["name"], value)
            checked += 1
    assert checked, f"no example reaches {path}: add the field to examples/imcluster-full.yaml"
