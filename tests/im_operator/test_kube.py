"""The operator's small client: apply creates or patches, delete and discovery, over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from im_operator.errors import KubeError
from im_operator.kube import Kube, _path


def test_paths_of_core_grouped_and_sub_resources() -> None:
    assert _path("v1", "Secret", "ns", "s") == "/api/v1/namespaces/ns/secrets/s"
    assert _path("apps/v1", "Deployment", "ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert _path("imcluster.io/v1alpha1", "IMCluster", "ns", "c", "status") == \
        "/apis/imcluster.io/v1alpha1/namespaces/ns/imclusters/c/status"


async def test_apply_get_patch_delete(kmock: Any, kubeconfig: Path) -> None:
    kmock.resources["v1/configmaps"] = kmock.ResourceInfo(
        kind="ConfigMap", namespaced=True, verbs={"get", "list", "create", "patch", "delete"})
    kube = await Kube.connect()
    try:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"},
              "data": {"a": "1"}}
        assert await kube.get("v1", "ConfigMap", "ns", "c") is None
        await kube.apply(cm)  # created: kmock answers 404 to apply on a missing object
        await kube.apply({**cm, "data": {"a": "2"}})  # patched
        got = await kube.get("v1", "ConfigMap", "ns", "c")
        assert got is not None and got["data"] == {"a": "2"}
        assert [r.params.get("fieldManager") for r in kmock._requests if r.method.value != "GET"] == [
            "im-operator", "im-operator", "im-operator"]
        assert await kube.has_api("v1", "ConfigMap")
        assert not await kube.has_api("monitoring.coreos.com/v1", "ServiceMonitor")
        assert await kube.delete("v1", "ConfigMap", "ns", "c")
        assert not await kube.delete("v1", "ConfigMap", "ns", "c")
        with pytest.raises(KubeError):
            await kube.merge_patch("v1", "ConfigMap", "ns", "c", {"data": {}})
    finally:
        await kube.close()
