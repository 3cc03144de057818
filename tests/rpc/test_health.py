"""logic answers the standard gRPC health check, for the whole server and for each service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from im.rpc.server import SERVICE_NAMES, set_serving

if TYPE_CHECKING:
    from tests.rpc.conftest import ClientFactory, LogicServer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def statuses(target: str) -> dict[str, int]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {
            service: (await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)).status
            for service in ("", *SERVICE_NAMES)
        }


async def test_a_started_server_is_serving(logic: LogicServer, make_client: ClientFactory) -> None:
    assert SERVICE_NAMES == ("im.v1.AuthService", "im.v1.GroupService", "im.v1.InboxService", "im.v1.DirectoryService",
                             "im.v1.ConversationService")
    assert set((await statuses(logic.target)).values()) == {SERVING}
    assert await (await make_client(logic.target)).serving()


async def test_serving_status_can_be_switched(logic: LogicServer, make_client: ClientFactory) -> None:
    assert logic.server is not None
    await set_serving(logic.server, False)
    assert set((await statuses(logic.target)).values()) == {NOT_SERVING}
    assert not await (await make_client(logic.target)).serving()
    await set_serving(logic.server, True)
    assert set((await statuses(logic.target)).values()) == {SERVING}


async def test_a_server_that_does_not_answer_is_not_serving(
    logic: LogicServer, make_client: ClientFactory
) -> None:
    await logic.stop()
    assert not await (await make_client(logic.target)).serving(timeout=0.2)
