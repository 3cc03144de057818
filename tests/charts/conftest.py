"""The chart, loaded once for the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helm_python import chart as helm

from tests.charts.chart_helpers import CHART_DIR


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded
