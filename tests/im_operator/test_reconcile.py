"""`reconcile()` against a fake API: what it reports when the server refuses a child."""

from __future__ import annotations

import base64
import logging
from typing import Any

from im_operator import reconcile as reconciling
from im_operator.errors import KubeError


class RefusingKube:
    """Stores what is written; refuses Deployments as a real API server refuses an invalid pod spec."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {("IMCluster", "chat"): body}
        for name in ("chat-mysql", "chat-redis", "chat-rabbitmq"):
            self.objects["Secret", name] = {"metadata": {"name": name, "namespace": "chat"},
                                            "data": {"url": base64.b64encode(b"x://h").decode()}}
        self.status: dict[str, Any] = {}

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    async def has_api(self, api_version: str, kind: str) -> bool:
        return False

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if manifest["kind"] == "Deployment":
            raise KubeError(422, 'Deployment.apps "chat-gateway" is invalid: spec.template.spec.tolerations[0]'
                                 '.operator: Unsupported value: "Sometimes"')
        self.objects[manifest["kind"], manifest["metadata"]["name"]] = manifest
        return manifest

    async def merge_patch(self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any],
                          subresource: str | None = None) -> dict[str, Any]:
        if subresource == "status":
            self.status = patch["status"]
        return patch

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        return False


async def test_a_child_the_api_server_refuses_degrades_the_cluster_naming_the_field(
        body: dict[str, Any], monkeypatch: Any) -> None:
    body["spec"]["gateway"] = {"pod": {"tolerations": [{"key": "k", "operator": "Sometimes"}]}}
    monkeypatch.setattr(reconciling.kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(reconciling.kopf, "warn", lambda *a, **k: None)
    kube = RefusingKube(body)
    outcome = await reconciling.reconcile(kube, "chat", "chat", logging.getLogger("test"))  # type: ignore[arg-type]
    assert outcome == "ChildRejected"
    degraded = next(c for c in kube.status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ChildRejected")
    assert "tolerations[0].operator" in degraded["message"]
