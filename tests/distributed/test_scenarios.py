"""The end-to-end scenarios of the kind suite (`e2e/`), run here against local processes.

`LocalEnvironment` plays Kubernetes' part: gateways are processes of the `cluster` harness, scaling
starts or drains them, killing is SIGKILL, and a rolling update starts a gateway with the new
configuration before it SIGTERMs an old one, one at a time (`maxSurge: 1, maxUnavailable: 0`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support import scenarios
from tests.support.cluster import GatewayProcess, LocalCluster

ROOT = Path(__file__).resolve().parents[2]
DRAIN_SECONDS = "2"


class LocalEnvironment:
    def __init__(self, cluster: LocalCluster, **gateway_env: str) -> None:
        self.cluster = cluster
        self.gateway_env = {"IM_DRAIN_SECONDS": DRAIN_SECONDS, **gateway_env}
        self.serving: list[GatewayProcess] = []
        self.generation = 0

    async def start_gateway(self, **env: str) -> GatewayProcess:
        settings = {**self.gateway_env, **env}
        gateway = await asyncio.to_thread(lambda: self.cluster.start_gateway(None, **settings))
        self.serving.append(gateway)
        return gateway

    async def gateways(self) -> list[str]:
        return [g.url for g in self.serving if g.running]

    async def scale_gateways(self, replicas: int) -> None:
        while len(self.serving) < replicas:
            await self.start_gateway()
        while len(self.serving) > replicas:
            await self._retire(self.serving[-1])

    async def kill_gateway(self, url: str) -> None:
        gateway = next(g for g in self.serving if g.url == url)
        self.serving.remove(gateway)
        await asyncio.to_thread(gateway.kill)

    async def rolling_update(self) -> None:
        self.generation += 1
        for old in list(self.serving):
            await self.start_gateway(IM_HEARTBEAT_INTERVAL=str(30 - self.generation))
            await self._retire(old)

    async def _retire(self, gateway: GatewayProcess) -> None:
        """Out of the list first (an endpoint removed), then SIGTERM: the gateway drains and exits 0."""
        self.serving.remove(gateway)
        code = await asyncio.to_thread(gateway.stop)
        assert code == 0, f"{gateway.name} exited with {code} after SIGTERM: {gateway.log()}"


@pytest.fixture
def env(cluster: LocalCluster) -> LocalEnvironment:
    cluster.start_logic()
    return LocalEnvironment(cluster)


@pytest.mark.integration
async def test_users_register_log_in_and_chat_privately_across_gateways(env: LocalEnvironment) -> None:
    await env.scale_gateways(2)
    await scenarios.accounts_and_private_chat(env)


@pytest.mark.integration
async def test_a_group_spread_over_the_gateways_reaches_every_member_once(env: LocalEnvironment) -> None:
    await env.scale_gateways(2)
    await scenarios.group_chat(env)


@pytest.mark.integration
async def test_new_connections_spread_over_the_gateways_after_scaling_up(env: LocalEnvironment) -> None:
    await env.scale_gateways(1)
    await scenarios.connections_spread_after_scaling(env, replicas=3)


@pytest.mark.integration
async def test_clients_of_a_killed_gateway_reconnect_elsewhere_and_lose_nothing(env: LocalEnvironment) -> None:
    await env.scale_gateways(2)
    await scenarios.gateway_dies_mid_conversation(env)


@pytest.mark.integration
async def test_a_rolling_update_of_the_gateways_drops_no_message(env: LocalEnvironment) -> None:
    await env.scale_gateways(2)
    await scenarios.rolling_update_without_loss(env)


def test_the_kind_suite_parses_and_imports() -> None:
    """e2e/ cannot run without Docker and kind; at least its script parses and its modules import."""
    subprocess.run(["bash", "-n", str(ROOT / "e2e" / "run.sh")], check=True)
    for path in sorted((ROOT / "e2e").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"e2e_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def test_the_kind_suite_manifests_are_valid() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "imcluster.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    imcluster = yaml.safe_load((ROOT / "e2e" / "manifests" / "imcluster.yaml").read_text().replace("@VERSION@", "e2e"))
    jsonschema.validate(imcluster["spec"], spec_schema)
    for name in ("backends.yaml", "secrets.yaml", "gateway-entry.yaml"):
        for obj in yaml.safe_load_all((ROOT / "e2e" / "manifests" / name).read_text()):
            kubernetes_validate.validate(obj, "1.33", strict=True)
    kind_config = yaml.safe_load((ROOT / "e2e" / "kind-config.yaml").read_text())
    entry = yaml.safe_load((ROOT / "e2e" / "manifests" / "gateway-entry.yaml").read_text())
    mapped = {m["containerPort"] for n in kind_config["nodes"] for m in n.get("extraPortMappings", [])}
    assert entry["spec"]["ports"][0]["nodePort"] in mapped, "the entry NodePort is published on the host"
