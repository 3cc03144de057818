"""Fixtures of the operator suite: IMCluster bodies, and the real operator against kmock."""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock as kmocklib
import pytest
import yaml
from kmock._internal.dicts import patch_dict

# The resync timer's interval is fixed when the handlers are imported: make it short for the suite.
os.environ.setdefault("IM_OPERATOR_RESYNC_SECONDS", "0.5")
os.environ.setdefault("IM_OPERATOR_RESYNC_INITIAL_DELAY_SECONDS", "0.2")

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "imcluster.yaml"
EXAMPLES = ROOT / "examples"
NAMESPACE = "chat"


def imcluster(name: str = "chat", **spec: Any) -> dict[str, Any]:
    """An IMCluster as a user writes it (no CRD defaults applied)."""
    body: dict[str, Any] = {
        "apiVersion": "imcluster.io/v1alpha1",
        "kind": "IMCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "rabbitmq": {"secretRef": {"name": "chat-rabbitmq"}},
            "redis": {"secretRef": {"name": "chat-redis"}},
            "mysql": {"secretRef": {"name": "chat-mysql"}},
        },
    }
    body["spec"].update(copy.deepcopy(spec))
    return body


@pytest.fixture
def body() -> dict[str, Any]:
    """As stored by the API server: with uid and generation."""
    stored = imcluster()
    stored["metadata"].update(uid="uid-chat", generation=1)
    return stored


class Emulator(kmocklib.KubernetesEmulator):
    """kmock plus the bits of an API server that kopf and the operator rely on: uid, generation,
    creationTimestamp and generateName on create; a new resourceVersion on every write; a new
    generation when the spec changes."""

    _versions = itertools.count(1)

    async def _handle(self, request: Any) -> Any:
        data = request.data
        version = str(next(self._versions))
        if request.action == kmocklib.action.CREATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:6]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("generation", 1)
            meta["resourceVersion"] = version
            meta.setdefault("creationTimestamp",
                            datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        elif request.action == kmocklib.action.UPDATE and isinstance(data, list):
            # kopf guards JSON-patches with a resourceVersion test; kmock's watch may replay an
            # object it already listed, so a stale test would fail forever. Writes here are
            # idempotent, so drop the guard rather than emulate optimistic concurrency.
            data[:] = [op for op in data
                       if not (op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion")]
            data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
        elif request.action == kmocklib.action.UPDATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            meta["resourceVersion"] = version
            key = (request.resource, request.namespace, request.name)
            if "spec" in data and request.subresource is None and key in self.objects \
                    and not self.objects[key].deleted:
                old = self.objects[key].raw
                if patch_dict(copy.deepcopy(old), data).get("spec") != old.get("spec"):
                    meta["generation"] = int(old.get("metadata", {}).get("generation", 1)) + 1
        return await super()._handle(request)


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    return {"cls": Emulator}


@pytest.fixture
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return loaded


@pytest.fixture
def make_body() -> Callable[..., dict[str, Any]]:
    return imcluster


async def _eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Retry `check` until it returns anything but False without raising AssertionError/KeyError."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = check()
            assert result is not False, "still False"
            return result
        except (AssertionError, KeyError, TypeError, IndexError):
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(interval)


@pytest.fixture
def eventually() -> Callable[..., Any]:
    return _eventually


@pytest.fixture
async def kubeconfig(kmock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "kmock", "user": {"token": "test-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
        "current-context": "kmock",
    }))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


def register(kmock: Any, *, service_monitors: bool = True, rabbitmq_operator: bool = True) -> None:
    """Declare every resource the operator touches, for discovery and list/watch."""
    verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
    resources = {
        "imcluster.io/v1alpha1/imclusters": ("IMCluster", {"status"}),
        "v1/configmaps": ("ConfigMap", set()),
        "v1/secrets": ("Secret", set()),
        "v1/services": ("Service", set()),
        "v1/events": ("Event", set()),
        "apps/v1/deployments": ("Deployment", {"status"}),
        "autoscaling/v2/horizontalpodautoscalers": ("HorizontalPodAutoscaler", {"status"}),
        "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", set()),
        "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", set()),
    }
    if service_monitors:
        resources["monitoring.coreos.com/v1/servicemonitors"] = ("ServiceMonitor", set())
    if rabbitmq_operator:
        resources["rabbitmq.com/v1beta1/rabbitmqclusters"] = ("RabbitmqCluster", {"status"})
    for key, (kind, subresources) in resources.items():
        kmock.resources[key] = kmock.ResourceInfo(
            kind=kind, namespaced=True, verbs=verbs, subresources=subresources)
    # kopf's backbone: it waits for these to be discoverable before it watches anything.
    kmock.resources["v1/namespaces"] = kmock.ResourceInfo(kind="Namespace", namespaced=False, verbs=verbs)
    kmock.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = kmock.ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False, verbs=verbs)


def _login_from_current_kubeconfig(kopf: Any) -> None:
    """The kubernetes library reads $KUBECONFIG once per process; every test has its own server."""
    if getattr(_login_from_current_kubeconfig, "done", False):
        return

    @kopf.on.login()
    def login(**kwargs: Any) -> Any:
        return kopf.login_with_kubeconfig(**kwargs)

    _login_from_current_kubeconfig.done = True  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "without_crds(*kinds): the emulated cluster lacks these CRDs")


@pytest.fixture
async def operator(kmock: Any, kubeconfig: Path, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The real operator (all its handlers) against kmock, in a thread with its own event loop.

    In this loop, kopf would count the test's own tasks as its hung tasks and wait for them at exit.
    """
    import kopf

    import im_operator.handlers  # noqa: F401  (registers the handlers)

    _login_from_current_kubeconfig(kopf)
    marker = request.node.get_closest_marker("without_crds")
    missing = set(marker.args) if marker else set()
    register(kmock, service_monitors="ServiceMonitor" not in missing,
             rabbitmq_operator="RabbitmqCluster" not in missing)
    settings = kopf.OperatorSettings()
    settings.queueing.exit_timeout = 0.2  # the default waits seconds for idle workers at exit
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(kopf.operator(
                clusterwide=True, standalone=True, stop_flag=stop, ready_flag=ready, settings=settings))
        except BaseException as e:  # noqa: BLE001  (reported by the fixture)
            errors.append(e)

    thread = threading.Thread(target=run, name="im-operator", daemon=True)
    thread.start()
    assert await asyncio.to_thread(ready.wait, 10), f"the operator did not start: {errors}"
    yield kmock
    stop.set()
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive(), "the operator did not stop"
    assert not errors, errors


class Api:
    """What a user or a controller does to the emulated cluster, over HTTP like kubectl."""

    PATHS = {
        "IMCluster": "/apis/imcluster.io/v1alpha1/namespaces/{ns}/imclusters",
        "Secret": "/api/v1/namespaces/{ns}/secrets",
        "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
        "Service": "/api/v1/namespaces/{ns}/services",
        "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
        "HorizontalPodAutoscaler": "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
        "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
        "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
        "ServiceMonitor": "/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors",
        "RabbitmqCluster": "/apis/rabbitmq.com/v1beta1/namespaces/{ns}/rabbitmqclusters",
        "Event": "/api/v1/namespaces/{ns}/events",
    }
    RESOURCES = {
        kind: path.split("/namespaces/")[0].removeprefix("/api/").removeprefix("/apis/") + "/"
        + path.rsplit("/", 1)[1]
        for kind, path in PATHS.items()
    }

    def __init__(self, kmock: Any, namespace: str = NAMESPACE) -> None:
        self.kmock = kmock
        self.namespace = namespace

    async def create(self, obj: dict[str, Any]) -> None:
        path = self.PATHS[obj["kind"]].format(ns=self.namespace)
        obj = copy.deepcopy(obj)
        obj["metadata"]["namespace"] = self.namespace
        resp = await self.kmock.post(path, json=obj)
        assert resp.status < 300, await resp.text()

    async def patch(self, kind: str, name: str, patch: dict[str, Any], subresource: str = "") -> None:
        path = self.PATHS[kind].format(ns=self.namespace) + f"/{name}" + (f"/{subresource}" if subresource else "")
        resp = await self.kmock.patch(path, json=patch,
                                      headers={"Content-Type": "application/merge-patch+json"})
        assert resp.status < 300, await resp.text()

    async def secret(self, name: str, **data: str) -> None:
        import base64
        await self.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                           "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})

    async def backing_secrets(self) -> None:
        await self.secret("chat-mysql", url="mysql://im:pw@mysql:3306/im")
        await self.secret("chat-redis", url="redis://redis:6379/0")
        await self.secret("chat-rabbitmq", url="amqp://im:pw@rabbitmq:5672/")

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The stored object; KeyError while it does not exist (for `eventually`)."""
        obj = self.kmock.objects[self.RESOURCES[kind], self.namespace, name]
        if obj.deleted:
            raise KeyError(name)
        raw: dict[str, Any] = obj.raw
        return raw

    def exists(self, kind: str, name: str) -> bool:
        try:
            self.get(kind, name)
        except KeyError:
            return False
        return True

    def events(self) -> list[dict[str, Any]]:
        resource = kmocklib.resource(self.RESOURCES["Event"])
        return [obj.raw for (res, _, _), obj in self.kmock.objects.items()
                if res == resource and not obj.deleted]

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        conds = self.get("IMCluster", name)["status"]["conditions"]
        found: dict[str, Any] = next(c for c in conds if c["type"] == kind)
        return found


@pytest.fixture
def api(operator: Any) -> Api:
    return Api(operator)
