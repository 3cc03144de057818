"""Typing across two gateways over the real RabbitMQ and Redis: the same checks as on `im serve`."""

from __future__ import annotations

import pytest

from im.client import HttpClient
from tests.support.cluster import LocalCluster
from tests.support.typing_checks import check_typing

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_typing_crosses_gateways_once_per_interval_and_is_never_stored(cluster: LocalCluster) -> None:
    cluster.start_logic()
    one = cluster.start_gateway(IM_TYPING_INTERVAL_SECONDS="1.5")
    two = cluster.start_gateway(IM_TYPING_INTERVAL_SECONDS="1.5")
    await check_typing(HttpClient(one.url), HttpClient(two.url), interval_seconds=1.5)
