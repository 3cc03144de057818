"""Fixtures of the kind suite; the environment itself is in e2e/kindenv.py."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest

from e2e.kindenv import IMCLUSTER, NAMESPACE, KindEnvironment


@pytest.fixture(scope="session", autouse=True)
def cluster_under_test() -> None:
    """Skip, not fail, where there is no cluster: the suite is started by e2e/run.sh."""
    if shutil.which("kubectl") is None:
        pytest.skip("the e2e suite needs kubectl and a kind cluster: run it with e2e/run.sh")
    found = subprocess.run(["kubectl", "-n", NAMESPACE, "get", "imcluster", IMCLUSTER, "-o", "name"],
                           capture_output=True, text=True, timeout=30)
    if found.returncode != 0:
        pytest.skip(f"no IMCluster {NAMESPACE}/{IMCLUSTER} to test ({found.stderr.strip()[:200]}): "
                    "run the suite with e2e/run.sh")


@pytest.fixture
async def env() -> AsyncIterator[KindEnvironment]:
    environment = KindEnvironment()
    try:
        yield environment
    finally:
        environment.close()
