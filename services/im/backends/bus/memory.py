"""The in-process bus of standalone mode: uplinks go to the local logic, downlinks to local gateways.

It keeps the `Bus` contract of `backends/base.py` within one process: uplinks count as consumed only
once the handler returns, and a handler that raises gets the same uplinks again, ahead of what was
published after them (after `redeliver_delay` seconds, so a failing handler does not spin). What is
queued when the process stops is gone: the client, never acked, resends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from im.backends.base import DownlinkHandler, UplinkHandler
from im.contracts.envelopes import Downlink, Uplink

__all__ = ["MemoryBus"]

log = logging.getLogger(__name__)

_WAKE_UP: list[Uplink] = []
"""Put on the queue to wake a consumer waiting for it when uplinks are to be delivered again."""


class MemoryBus:
    def __init__(
        self, *, max_queued_batches: int = 1024, max_in_flight: int = 64, redeliver_delay: float = 0.5,
    ) -> None:
        self._queue: asyncio.Queue[list[Uplink]] = asyncio.Queue(max_queued_batches)
        self._again: deque[list[Uplink]] = deque()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._redeliver_delay = redeliver_delay
        self._gateways: dict[str, DownlinkHandler] = {}
        self._consumer: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._closing = True
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        left = len(self._again) + self._queue.qsize()
        if left:
            log.warning("closed with %d publishes of uplinks not consumed", left)

    async def ping(self) -> None:
        pass

    async def publish(self, uplinks: list[Uplink]) -> None:
        await self._queue.put(uplinks)

    async def consume(self, handler: UplinkHandler) -> None:
        self._consumer = asyncio.create_task(self._consume(handler), name="memory-bus-consumer")

    async def _consume(self, handler: UplinkHandler) -> None:
        while True:
            await self._in_flight.acquire()
            uplinks = self._again.popleft() if self._again else await self._queue.get()
            if uplinks is _WAKE_UP:
                self._in_flight.release()
                continue
            task = asyncio.create_task(self._handle(handler, uplinks))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, handler: UplinkHandler, uplinks: list[Uplink]) -> None:
        try:
            await handler(uplinks)
        except Exception:
            if self._closing:
                log.warning("uplink handler failed while closing; %d uplinks not consumed", len(uplinks))
                return
            log.warning("uplink handler failed; the %d uplinks are delivered again in %.1fs",
                        len(uplinks), self._redeliver_delay, exc_info=True)
            await asyncio.sleep(self._redeliver_delay)
            self._again.append(uplinks)
            with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes the consumer anyway
                self._queue.put_nowait(_WAKE_UP)
        finally:
            self._in_flight.release()

    async def deliver(self, downlink: Downlink) -> None:
        handler = self._gateways.get(downlink.gateway)
        if handler is not None:
            await handler(downlink)

    async def subscribe(self, gateway: str, handler: DownlinkHandler) -> None:
        self._gateways[gateway] = handler
