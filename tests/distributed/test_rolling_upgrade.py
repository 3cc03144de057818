"""A rolling upgrade: a gateway still writing the previous bus envelope version (an older release, or
one pinned with IM_BUS_ENVELOPE_VERSION=1 until every logic replica is new) and a new one share a new
logic; nothing is dropped in either direction, and the older gateway reads what the new logic sends."""

from __future__ import annotations

import pytest

from im.client import HttpClient
from tests.distributed.shards import exchange_in_order
from tests.support.cluster import LocalCluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_a_gateway_writing_the_previous_envelope_version_talks_to_the_new_logic(cluster: LocalCluster) -> None:
    cluster.start_logic()
    old = cluster.start_gateway(IM_RATE_LIMIT="0", IM_BUS_ENVELOPE_VERSION="1")
    new = cluster.start_gateway(IM_RATE_LIMIT="0")
    await exchange_in_order(HttpClient(new.url), old.ws_url, new.ws_url, 30)
