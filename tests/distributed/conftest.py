from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Backends, LocalCluster, isolated_backends, local_cluster


@pytest.fixture
def backends() -> Iterator[Backends]:
    with isolated_backends() as backends:
        yield backends


@pytest.fixture
def cluster(tmp_path: Path, backends: Backends) -> Iterator[LocalCluster]:
    """An empty cluster on isolated backends: start its logic and gateway processes in the test."""
    with local_cluster(tmp_path, backends) as cluster:
        yield cluster
