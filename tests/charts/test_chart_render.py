"""The chart renders valid Kubernetes objects, with the operator, RBAC and add-ons it promises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from helm_python import chart as helm

from tests.charts.chart_helpers import CHART_DIR, DASHBOARD_DIR, NAMESPACE, RELEASE, by_kind, one, render
from tests.charts.value_sets import VALUE_SETS

KUBE_VERSION = "1.33"
REPO_CRD = CHART_DIR.parents[1] / "crds" / "imcluster.yaml"
LABEL_KEY = {"type": "string", "minLength": 1}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}

# Structural checks for custom resources that have no schema in kubernetes-validate: the fields the
# chart writes, typed as prometheus-operator and KEDA define them.
CUSTOM_SCHEMAS: dict[str, dict[str, Any]] = {
    "monitoring.coreos.com/v1/PodMonitor": {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name", "namespace"],
                         "properties": {"labels": LABELS}},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "podMetricsEndpoints"],
                "properties": {
                    "jobLabel": LABEL_KEY,
                    "namespaceSelector": {
                        "type": "object", "additionalProperties": False, "maxProperties": 1,
                        "properties": {"any": {"type": "boolean"},
                                       "matchNames": {"type": "array", "items": {"type": "string"}}}},
                    "selector": {
                        "type": "object", "additionalProperties": False,
                        "properties": {"matchLabels": LABELS, "matchExpressions": {"type": "array"}}},
                    "podMetricsEndpoints": {
                        "type": "array", "minItems": 1,
                        "items": {"type": "object", "additionalProperties": False, "required": ["port"],
                                  "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                                 "interval": {"type": "string"},
                                                 "scrapeTimeout": {"type": "string"}}}},
                },
            },
        },
    },
    "keda.sh/v1alpha1/ScaledObject": {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": {
                        "type": "object", "required": ["name"], "additionalProperties": False,
                        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                       "name": {"type": "string"}}},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer"},
                    "cooldownPeriod": {"type": "integer"},
                    "advanced": {"type": "object"},
                    "triggers": {
                        "type": "array", "minItems": 1,
                        "items": {"type": "object", "required": ["type", "metadata"],
                                  "properties": {"type": {"const": "prometheus"},
                                                 "metricType": {"enum": ["AverageValue", "Value"]},
                                                 "metadata": {
                                                     "type": "object",
                                                     "required": ["serverAddress", "query", "threshold"],
                                                     "additionalProperties": {"type": "string"}}}}},
                },
            },
        },
    },
}


PEERING = {"type": "object", "required": ["metadata"], "additionalProperties": False,
           "properties": {"apiVersion": {}, "kind": {}, "metadata": {"type": "object", "required": ["name"]}}}
CUSTOM_SCHEMAS["kopf.dev/v1/ClusterKopfPeering"] = PEERING
CUSTOM_SCHEMAS["kopf.dev/v1/KopfPeering"] = PEERING
CUSTOM_SCHEMAS["monitoring.coreos.com/v1/ServiceMonitor"] = {
    "type": "object", "required": ["metadata", "spec"],
    "properties": {"spec": {
        "type": "object", "additionalProperties": False, "required": ["selector", "endpoints"],
        "properties": {
            "selector": {"type": "object", "properties": {"matchLabels": LABELS}},
            "namespaceSelector": {"type": "object"},
            "endpoints": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "required": ["port"],
                "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                               "interval": {"type": "string"}}}}}}}}
CUSTOM_SCHEMAS["monitoring.coreos.com/v1/PrometheusRule"] = {
    "type": "object", "required": ["metadata", "spec"],
    "properties": {"spec": {
        "type": "object", "additionalProperties": False, "required": ["groups"],
        "properties": {"groups": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "rules"],
            "properties": {"name": {"type": "string"}, "rules": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["alert", "expr"],
                "properties": {"alert": {"type": "string"}, "expr": {"type": "string"}, "for": {"type": "string"},
                               "labels": LABELS, "annotations": LABELS}}}}}}}}}}


def crd_schema() -> dict[str, Any]:
    if not REPO_CRD.exists():
        pytest.fail(f"{REPO_CRD} does not exist yet: the example IMCluster cannot be checked against it")
    crd = yaml.safe_load(REPO_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def validate_object(obj: dict[str, Any]) -> None:
    key = f"{obj['apiVersion']}/{obj['kind']}"
    if key in CUSTOM_SCHEMAS:
        jsonschema.validate(obj, CUSTOM_SCHEMAS[key])
    elif key == "imcluster.io/v1alpha1/IMCluster":
        assert isinstance(obj["spec"], dict)  # checked against the CRD in its own test
    else:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_rendered_object_is_valid(chart: helm.Chart, value_set: str) -> None:
    objects = render(chart, VALUE_SETS[value_set])
    assert objects
    for obj in objects:
        validate_object(obj)
        meta = obj["metadata"]
        assert len(meta["name"]) <= 63, meta["name"]
        assert meta["labels"]["app.kubernetes.io/part-of"] == "imcluster"


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_object_names_are_unique(chart: helm.Chart, value_set: str) -> None:
    objects = render(chart, VALUE_SETS[value_set])
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys))


def test_defaults_render_the_operator_and_nothing_optional(chart: helm.Chart) -> None:
    kinds = sorted(o["kind"] for o in render(chart))
    assert kinds == sorted([
        "ServiceAccount", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding",
        "Deployment", "Service", "Pod", "ConfigMap", "ConfigMap", "ConfigMap", "NetworkPolicy",
    ])


def test_operator_runs_one_replica_with_recreate_and_a_kopf_liveness_probe(chart: helm.Chart) -> None:
    deployment = one(render(chart), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"imcluster/operator:{chart.metadata['appVersion']}"
    assert container["command"] == ["im-operator"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert not [arg for arg in container["args"] if arg.startswith("--namespace")]  # the whole cluster
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[probe["port"]] == 8080
    assert pod["serviceAccountName"] == f"{RELEASE}-imcluster-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_im_operator_accepts_the_arguments_the_chart_passes(chart: helm.Chart, value_set: str) -> None:
    from im_operator.__main__ import parse_args

    values = VALUE_SETS[value_set]
    container = one(render(chart, values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    args = parse_args(container["args"])
    assert args.liveness == "http://0.0.0.0:8080/healthz"
    assert args.namespace == values.get("operator", {}).get("watchNamespaces", [])
    operator = values.get("operator", {})
    several = f"{RELEASE}-imcluster" if operator.get("replicas", 1) > 1 else ""
    assert args.peering == (operator.get("peering") or several)
    assert args.metrics_port == 9100


def test_an_image_digest_pins_the_operator_image(chart: helm.Chart) -> None:
    digest = "sha256:" + "b" * 64
    deployment = one(render(chart, {"image": {"digest": digest, "tag": "ignored"}}), "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"imcluster/operator@{digest}"


def rules_of(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


OWN = {"create", "get", "list", "watch", "patch", "update", "delete"}
READ = {"get", "list", "watch"}


def test_rbac_grants_exactly_what_the_operator_needs(chart: helm.Chart) -> None:
    objects = render(chart)
    cluster = rules_of(one(objects, "ClusterRole", f"{RELEASE}-imcluster-operator-cluster"))
    workload = rules_of(one(objects, "ClusterRole", f"{RELEASE}-imcluster-operator"))
    assert cluster == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): READ,
        ("", "namespaces"): READ,
        ("kopf.dev", "clusterkopfpeerings"): READ | {"patch"},
    }
    assert workload == {
        ("imcluster.io", "imclusters"): READ | {"patch"},
        ("imcluster.io", "imclusters/status"): {"get", "patch", "update"},
        ("imcluster.io", "imclusters/finalizers"): {"update"},
        ("", "configmaps"): OWN,
        ("", "secrets"): OWN,
        ("", "services"): OWN,
        ("apps", "deployments"): OWN,
        ("autoscaling", "horizontalpodautoscalers"): OWN,
        ("policy", "poddisruptionbudgets"): OWN,
        ("networking.k8s.io", "networkpolicies"): OWN,
        ("monitoring.coreos.com", "servicemonitors"): OWN,
        ("keda.sh", "scaledobjects"): OWN,
        ("networking.k8s.io", "ingresses"): OWN,
        ("gateway.networking.k8s.io", "httproutes"): OWN,
        ("", "pods"): READ,
        ("rabbitmq.com", "rabbitmqclusters"): READ,
        ("", "events"): {"create", "patch"},
        ("events.k8s.io", "events"): {"create", "patch"},
        ("kopf.dev", "kopfpeerings"): READ | {"patch"},
    }
    service_account = one(objects, "ServiceAccount")["metadata"]
    for binding in by_kind(objects, "ClusterRoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": service_account["name"],
                                        "namespace": NAMESPACE}]
    assert {b["roleRef"]["name"] for b in by_kind(objects, "ClusterRoleBinding")} == {
        f"{RELEASE}-imcluster-operator-cluster", f"{RELEASE}-imcluster-operator"}


def test_watched_namespaces_get_role_bindings_instead_of_cluster_wide_rights(chart: helm.Chart) -> None:
    objects = render(chart, VALUE_SETS["watch-namespaces"])
    assert [b["roleRef"]["name"] for b in by_kind(objects, "ClusterRoleBinding")] == [
        f"{RELEASE}-imcluster-operator-cluster"]
    bindings = by_kind(objects, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["chat-prod", "chat-staging"]
    assert {b["roleRef"]["name"] for b in bindings} == {f"{RELEASE}-imcluster-operator"}
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=chat-prod" in args and "--namespace=chat-staging" in args
    pod_monitor = one(objects, "PodMonitor")
    assert pod_monitor["spec"]["namespaceSelector"] == {"matchNames": ["chat-prod", "chat-staging"]}


def test_rbac_and_service_account_can_be_brought_by_the_user(chart: helm.Chart) -> None:
    objects = render(chart, VALUE_SETS["bring-your-own-rbac"])
    assert not {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding", "ConfigMap"} & {
        o["kind"] for o in objects}
    deployment = one(objects, "Deployment")
    assert deployment["metadata"]["name"] == "im-operator-operator"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "platform-operator"


def test_the_helm_test_pod_probes_the_operator_health_endpoint_through_its_service(chart: helm.Chart) -> None:
    objects = render(chart)
    pod = one(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    service = one(objects, "Service")
    url = f"http://{service['metadata']['name']}.{NAMESPACE}.svc:8080/healthz"
    assert url in pod["spec"]["containers"][0]["args"]
    assert pod["spec"]["restartPolicy"] == "Never"
    deployment = one(objects, "Deployment")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    container_ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports


def test_each_dashboard_ships_as_a_configmap_for_the_grafana_sidecar(chart: helm.Chart) -> None:
    configmaps = by_kind(render(chart, {"dashboards": {"namespace": "monitoring"}}), "ConfigMap")
    files = sorted(DASHBOARD_DIR.glob("*.json"))
    assert len(configmaps) == len(files) == 3
    shipped: dict[str, Any] = {}
    for configmap in configmaps:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["namespace"] == "monitoring"
        assert configmap["metadata"]["annotations"]["grafana_folder"] == "imcluster"
        ((key, text),) = configmap["data"].items()
        shipped[key] = json.loads(text)
    assert shipped == {f"imcluster-{f.name}": json.loads(f.read_text()) for f in files}


def test_the_dashboard_label_is_configurable(chart: helm.Chart) -> None:
    values = {"dashboards": {"label": "grafana.com/dashboard", "labelValue": "imcluster", "folder": ""}}
    for configmap in by_kind(render(chart, values), "ConfigMap"):
        assert configmap["metadata"]["labels"]["grafana.com/dashboard"] == "imcluster"
        assert "grafana_dashboard" not in configmap["metadata"]["labels"]
        assert "annotations" not in configmap["metadata"]


def adapter_rules() -> list[dict[str, Any]]:
    return yaml.safe_load((CHART_DIR / "files" / "prometheus-adapter-rules.yaml").read_text())["rules"]  # type: ignore[no-any-return]


def test_prometheus_adapter_rules_expose_gateway_connections_as_a_pods_metric(chart: helm.Chart) -> None:
    configmap = one(render(chart, {"prometheusAdapter": {"rules": {"enabled": True}}}), "ConfigMap",
                    f"{RELEASE}-imcluster-prometheus-adapter")
    config = yaml.safe_load(configmap["data"]["config.yaml"])
    assert config["rules"] == adapter_rules()
    (rule,) = [r for r in config["rules"] if r["name"]["as"] == "im_gateway_connections"]
    assert rule["seriesQuery"].startswith("im_gateway_connections{")
    overrides = rule["resources"]["overrides"]
    assert overrides == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert "<<.Series>>{<<.LabelMatchers>>}" in rule["metricsQuery"]
    assert "by (<<.GroupBy>>)" in rule["metricsQuery"]


def test_the_deploy_values_for_the_prometheus_adapter_chart_carry_the_same_rules() -> None:
    values = yaml.safe_load((CHART_DIR.parents[1] / "deploy" / "prometheus-adapter-values.yaml").read_text())
    assert values["rules"]["custom"] == adapter_rules()


def test_keda_scaled_object_scales_the_gateway_deployment_gently(chart: helm.Chart) -> None:
    objects = render(chart, {"keda": {"scaledObject": {"enabled": True, "imcluster": "chat"}}})
    scaled = one(objects, "ScaledObject")
    target = scaled["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chat-gateway"}
    scale_down = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]
    assert scale_down["stabilizationWindowSeconds"] == 600
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["threshold"] == "5000"
    assert 'pod=~"chat-gateway-.*"' in trigger["metadata"]["query"]
    assert f'namespace="{NAMESPACE}"' in trigger["metadata"]["query"]


def test_the_pod_monitor_selects_the_pods_the_operator_labels(chart: helm.Chart) -> None:
    pod_monitor = one(render(chart, {"monitoring": {"podMonitor": {"enabled": True}}}), "PodMonitor")
    assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    selector = pod_monitor["spec"]["selector"]
    gateway_labels = {"app.kubernetes.io/name": "imcluster", "app.kubernetes.io/instance": "chat",
                      "app.kubernetes.io/component": "gateway"}
    assert selector["matchLabels"].items() <= gateway_labels.items()
    (expression,) = selector["matchExpressions"]
    assert gateway_labels[expression["key"]] in expression["values"]


def test_the_example_imcluster_is_opt_in(chart: helm.Chart) -> None:
    assert not by_kind(render(chart), "IMCluster")
    example = one(render(chart, {"example": {"enabled": True, "name": "demo"}}), "IMCluster")
    assert example["metadata"] == {**example["metadata"], "name": "demo", "namespace": NAMESPACE}
    assert example["spec"]["gateway"]["autoscaling"]["enabled"] is True


def test_the_example_imcluster_is_valid_against_the_crd(chart: helm.Chart) -> None:
    schema = crd_schema()
    for values in ({"example": {"enabled": True}}, VALUE_SETS["everything-on"]):
        example = one(render(chart, values), "IMCluster")
        jsonschema.validate(example["spec"], schema["properties"]["spec"])


def test_notes_tell_how_to_check_the_operator(chart: helm.Chart) -> None:
    notes = chart.render({"example": {"enabled": True}}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    text = next(v for k, v in notes.items() if k.endswith("NOTES.txt"))
    assert f"helm test {RELEASE}" in text
    assert "kubectl -n imcluster-system get imc imcluster-example" in text


def test_no_template_leaves_an_unrendered_value(chart: helm.Chart) -> None:
    for name in VALUE_SETS:
        for path, text in chart.render(VALUE_SETS[name], name=RELEASE, namespace=NAMESPACE).items():
            assert "<no value>" not in text, (name, path)


def test_chart_files_are_all_used() -> None:
    templates = "".join(p.read_text() for p in (CHART_DIR / "templates").rglob("*") if p.is_file())
    for path in (CHART_DIR / "files").iterdir():
        assert f'"files/{path.name}"' in templates, path
    assert '"dashboards/*.json"' in templates
    assert Path(CHART_DIR / "crds").is_dir()
