"""A small async Kubernetes client for unstructured objects (dicts), on `kubernetes.aio`.

The typed client validates bodies per model; the operator only moves dicts its builders made,
for core, built-in and custom resources alike, so it talks to the REST paths directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from kubernetes.aio import client, config

from im_operator.errors import KubeError

__all__ = ["Kube", "PLURALS", "FIELD_MANAGER"]

FIELD_MANAGER = "im-operator"

PLURALS: dict[str, str] = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "Deployment": "deployments",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "NetworkPolicy": "networkpolicies",
    "ServiceMonitor": "servicemonitors",
    "ScaledObject": "scaledobjects",
    "RabbitmqCluster": "rabbitmqclusters",
    "Ingress": "ingresses",
    "HTTPRoute": "httproutes",
    "IMCluster": "imclusters",
}


def _path(api_version: str, kind: str, namespace: str, name: str | None = None,
          subresource: str | None = None) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{PLURALS[kind]}"
    if name is not None:
        path += f"/{name}"
    if subresource is not None:
        path += f"/{subresource}"
    return path


class Kube:
    """Get, create, server-side apply, merge-patch and delete namespaced objects."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    @classmethod
    async def connect(cls) -> Kube:
        """In-cluster service account first, then the kubeconfig (`$KUBECONFIG` or ~/.kube/config)."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            # The library resolves $KUBECONFIG once, at import; read it now instead.
            path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
            await config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, client_configuration=configuration)
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self._api.close()  # type: ignore[no-untyped-call]

    async def _call(self, method: str, path: str, *, body: Any = None,
                    content_type: str = "application/json",
                    query: list[tuple[str, str]] | None = None) -> Any:
        serialized = await self._api.param_serialize(
            method=method, resource_path=path, query_params=query or None,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body, auth_settings=["BearerToken"],
        )
        _, url, headers, payload, _ = serialized
        response = await self._api.call_api(method, url, header_params=headers, body=payload)
        raw: bytes = await response.read()  # type: ignore[no-untyped-call]
        data = json.loads(raw) if raw else {}
        if not 200 <= response.status < 300:
            message = data.get("message", raw[:200]) if isinstance(data, dict) else raw[:200]
            raise KubeError(response.status, str(message))
        return data

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._call("GET", _path(api_version, kind, namespace, name))
        except KubeError as e:
            if e.status == 404:
                return None
            raise
        return result

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        result: dict[str, Any] = await self._call(
            "POST", _path(manifest["apiVersion"], manifest["kind"], meta["namespace"]), body=manifest,
            query=[("fieldManager", FIELD_MANAGER)])
        return result

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply with force: fields the operator stops setting are removed, and
        fields others own (an HPA's replicas) are left alone."""
        meta = manifest["metadata"]
        path = _path(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
        try:
            result: dict[str, Any] = await self._call(
                "PATCH", path, body=manifest, content_type="application/apply-patch+yaml",
                query=[("fieldManager", FIELD_MANAGER), ("force", "true")])
        except KubeError as e:
            if e.status != 404:  # a real API server creates on apply; simpler servers do not
                raise
            result = await self.create(manifest)
        return result

    async def merge_patch(self, api_version: str, kind: str, namespace: str, name: str,
                          patch: Mapping[str, Any], subresource: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "PATCH", _path(api_version, kind, namespace, name, subresource), body=patch,
            content_type="application/merge-patch+json")
        return result

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        try:
            await self._call("DELETE", _path(api_version, kind, namespace, name),
                             body={"propagationPolicy": "Background"})
        except KubeError as e:
            if e.status == 404:
                return False
            raise
        return True

    async def has_api(self, api_version: str, kind: str) -> bool:
        """Whether the server serves this kind (e.g. its CRD is installed), by discovery."""
        try:
            data = await self._call("GET", f"/apis/{api_version}" if api_version != "v1" else "/api/v1")
        except KubeError as e:
            if e.status == 404:
                return False
            raise
        return any(r.get("name") == PLURALS[kind] for r in data.get("resources", []))
