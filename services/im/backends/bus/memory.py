"""The in-process bus of standalone mode: uplinks go to the local logic, downlinks to local gateways."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from im.backends.base import DownlinkHandler, UplinkHandler
from im.contracts.envelopes import Downlink, Uplink

__all__ = ["MemoryBus"]

log = logging.getLogger(__name__)


class MemoryBus:
    def __init__(self, *, max_queued_batches: int = 1024, max_in_flight: int = 64) -> None:
        self._queue: asyncio.Queue[list[Uplink]] = asyncio.Queue(max_queued_batches)
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._gateways: dict[str, DownlinkHandler] = {}
        self._consumer: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def ping(self) -> None:
        pass

    async def publish(self, uplinks: list[Uplink]) -> None:
        await self._queue.put(uplinks)

    async def consume(self, handler: UplinkHandler) -> None:
        self._consumer = asyncio.create_task(self._consume(handler), name="memory-bus-consumer")

    async def _consume(self, handler: UplinkHandler) -> None:
        while True:
            uplinks = await self._queue.get()
            await self._in_flight.acquire()
            task = asyncio.create_task(self._handle(handler, uplinks))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, handler: UplinkHandler, uplinks: list[Uplink]) -> None:
        try:
            await handler(uplinks)
        except Exception:
            log.exception("uplink handler failed; the %d uplinks are dropped", len(uplinks))
        finally:
            self._in_flight.release()

    async def deliver(self, downlink: Downlink) -> None:
        handler = self._gateways.get(downlink.gateway)
        if handler is not None:
            await handler(downlink)

    async def subscribe(self, gateway: str, handler: DownlinkHandler) -> None:
        self._gateways[gateway] = handler
