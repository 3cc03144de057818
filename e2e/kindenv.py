"""The kind suite's `Environment`: the scenarios of tests/support/scenarios.py against a real cluster.

Set up by `e2e/run.sh`, which exports `E2E_NAMESPACE`, `E2E_IMCLUSTER`, `E2E_ENTRY_URL` and `KUBECONFIG`.
Each gateway pod is reached through its own `kubectl port-forward` (so a scenario can aim at, and kill,
one gateway); `E2E_ENTRY_URL` is the NodePort Service through kube-proxy (so connections spread as
they would behind a load balancer). The callbacks act through the IMCluster spec, as a user would:
scaling patches `spec.gateway.replicas`, a rolling update changes `spec.gateway.heartbeat`, killing
force-deletes a pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

NAMESPACE = os.environ.get("E2E_NAMESPACE", "imcluster-e2e")
IMCLUSTER = os.environ.get("E2E_IMCLUSTER", "chat")
ENTRY_URL = os.environ.get("E2E_ENTRY_URL", "http://127.0.0.1:30080")
GATEWAY_SELECTOR = (f"app.kubernetes.io/name=imcluster,app.kubernetes.io/instance={IMCLUSTER},"
                    "app.kubernetes.io/component=gateway")
GATEWAY_PORT = 8080
CONFIG_HASH = "imcluster.io/config-hash"
ROLLOUT_TIMEOUT = 300


async def kubectl(*args: str, check: bool = True, timeout: float = 120) -> str:
    process = await asyncio.create_subprocess_exec(
        "kubectl", "-n", NAMESPACE, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        raise
    if check and process.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


async def kubectl_json(*args: str) -> Any:
    return json.loads(await kubectl(*args, "-o", "json"))


async def patch_imcluster(spec: dict[str, Any]) -> None:
    await kubectl("patch", "imcluster", IMCLUSTER, "--type", "merge", "-p", json.dumps({"spec": spec}))


def _ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


class PortForward:
    """`kubectl port-forward pod/<name> :8080`, on a local port kubectl picks."""

    def __init__(self, pod: str) -> None:
        self.pod = pod
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "kubectl", "-n", NAMESPACE, "port-forward", f"pod/{self.pod}", f":{GATEWAY_PORT}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert self.process.stdout is not None
        line = (await asyncio.wait_for(self.process.stdout.readline(), 30)).decode()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"port-forward to {self.pod}: {line!r}")
        self.url = f"http://127.0.0.1:{match.group(1)}"
        # Keep reading so a full pipe never stalls kubectl.
        asyncio.get_running_loop().create_task(self._drain_output())

    async def _drain_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with contextlib.suppress(Exception):
            while await self.process.stdout.readline():
                pass

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.terminate()


class KindEnvironment:
    def __init__(self) -> None:
        self.forwards: dict[str, PortForward] = {}

    async def ready_gateway_pods(self) -> list[str]:
        pods = await kubectl_json("get", "pods", "-l", GATEWAY_SELECTOR)
        return sorted(p["metadata"]["name"] for p in pods["items"] if _ready(p))

    async def gateways(self) -> list[str]:
        pods = await self.ready_gateway_pods()
        for name in list(self.forwards):
            if name not in pods or not self.forwards[name].alive:
                self.forwards.pop(name).stop()
        for name in pods:
            if name not in self.forwards:
                forward = PortForward(name)
                await forward.start()
                self.forwards[name] = forward
        return [self.forwards[name].url for name in pods]

    def pod_of(self, url: str) -> str:
        return next(name for name, forward in self.forwards.items() if forward.url == url)

    async def wait_for_gateways(self, replicas: int) -> None:
        await kubectl("rollout", "status", f"deployment/{IMCLUSTER}-gateway", f"--timeout={ROLLOUT_TIMEOUT}s",
                      timeout=ROLLOUT_TIMEOUT + 10)
        deadline = time.monotonic() + ROLLOUT_TIMEOUT
        while time.monotonic() < deadline:
            pods = await kubectl_json("get", "pods", "-l", GATEWAY_SELECTOR)
            # Old pods still draining count too: wait until only `replicas` pods exist, all ready.
            if len(pods["items"]) == replicas and all(_ready(p) for p in pods["items"]):
                return
            await asyncio.sleep(1)
        raise AssertionError(f"gateway pods did not settle at {replicas}")

    async def deployment(self) -> dict[str, Any]:
        return await kubectl_json("get", "deployment", f"{IMCLUSTER}-gateway")  # type: ignore[no-any-return]

    async def until(self, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 120) -> None:
        """Until the gateway Deployment satisfies `check` (the operator has applied the spec change)."""
        deadline = time.monotonic() + timeout
        while not check(await self.deployment()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the operator did not {what} within {timeout}s")
            await asyncio.sleep(1)

    async def scale_gateways(self, replicas: int) -> None:
        await patch_imcluster({"gateway": {"replicas": replicas}})
        await self.until(lambda d: d["spec"]["replicas"] == replicas, f"scale the gateways to {replicas}")
        await self.wait_for_gateways(replicas)
        await kubectl("wait", f"imcluster/{IMCLUSTER}", "--for=condition=Ready", "--timeout=300s", timeout=310)

    async def kill_gateway(self, url: str) -> None:
        pod = self.pod_of(url)
        await kubectl("delete", "pod", pod, "--grace-period=0", "--force", "--wait=false")
        self.forwards.pop(pod).stop()

    async def rolling_update(self) -> None:
        body = await kubectl_json("get", "imcluster", IMCLUSTER)
        before = (await self.deployment())["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]
        gateway = body["spec"].get("gateway", {})
        heartbeat = gateway.get("heartbeat", {})
        interval = int(heartbeat.get("intervalSeconds", 30))
        timeout = int(heartbeat.get("timeoutSeconds", 90))
        # A setting the gateways read at start: the config hash on the pod template changes, and the
        # Deployment rolls (maxSurge 1, maxUnavailable 0; each old pod drains on SIGTERM).
        await patch_imcluster({"gateway": {"heartbeat": {
            "intervalSeconds": interval + 1 if interval < 60 else 25, "timeoutSeconds": max(timeout, 120)}}})
        replicas = int(gateway.get("replicas", 2))
        await self.until(lambda d: d["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH] != before,
                         "change the gateways' config hash")
        await self.wait_for_gateways(replicas)

    def close(self) -> None:
        for forward in self.forwards.values():
            forward.stop()
        self.forwards.clear()
