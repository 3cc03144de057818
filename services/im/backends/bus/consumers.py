"""The consuming half of `RabbitMqBus`: one uplink shard queue, or one gateway's downlink queue.

Uplink shard (its own channel, `prefetch` AMQP messages in flight):
- the handler is called once per AMQP message, in delivery order; several calls may be in flight at
  once (the handler is expected to wait for a batch commit);
- acks go out in delivery order only (`multiple=True` up to the last message whose handler, and every
  handler before it, has returned), so a message is never acked before the ones ahead of it;
- when a handler raises, the shard stops calling the handler, lets the calls in flight finish, acks
  what may be acked, and closes the channel: RabbitMQ puts the rest back in queue order and delivers it
  again (to this or another replica) after `retry_delay`. A lost connection does the same. Either way a
  message the handler had already taken may come again (`Uplink.redelivered`): the store recognises it
  by `(sender, cid)`. Calls already in flight behind a failed one may still succeed before it comes
  again, so a handler that must keep order across failures retries (as the batch writer does) rather
  than raise;
- with shard leases, a delivery is handed to the handler only while this replica holds the shard's
  lease (`ShardLeases.holds`, confirmed with Redis when the last round is stale, e.g. after the
  process was paused); a shard whose lease moved away is abandoned: its channel closes at once and the
  broker requeues everything unacknowledged, in order, for the new holder;
- a message that cannot be decoded is published to the dead-letter exchange (with a confirm) and only
  then acked: it is never dropped, and it never blocks the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from im import metrics
from im.backends.base import DownlinkHandler, UplinkHandler
from im.contracts.envelopes import UndecodableEnvelope, decode_downlink, decode_uplinks

if TYPE_CHECKING:
    from im.backends.bus.rabbitmq import RabbitMqBus

__all__ = ["ShardConsumer", "Subscription"]

log = logging.getLogger("im.backends.bus.rabbitmq")

DeadLetter = Callable[[AbstractIncomingMessage, str, str], Awaitable[None]]
"""Publish a message to the dead-letter exchange: (message, source queue, reason)."""


async def first(*waits: Awaitable[object]) -> None:
    """Wait until one of `waits` is done, then cancel the others."""
    futures = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()


@dataclass(slots=True)
class _Pending:
    message: AbstractIncomingMessage
    since: float
    done: bool = False


class ShardConsumer:
    """Consumes one uplink queue, one channel (a `_ShardSession`) at a time, until stopped."""

    def __init__(self, bus: RabbitMqBus, connection: AbstractRobustConnection, shard: int,
                 handler: UplinkHandler) -> None:
        self.bus = bus
        self.connection = connection
        self.shard = shard
        self.handler = handler
        self.stopping = asyncio.Event()
        self.abandoned = False
        self.session: _ShardSession | None = None
        self.state: str | None = None

    def stop(self, *, drain: bool = True) -> None:
        """`drain`: finish what is in flight first; otherwise drop the channel now (see the module)."""
        self.abandoned = self.abandoned or not drain
        self.stopping.set()

    def progressing(self) -> bool:
        session = self.session
        return session is None or session.progressing(time.monotonic(), self.bus.stall_timeout)

    async def run(self) -> None:
        try:
            while not self.stopping.is_set():
                failed = False
                try:
                    self._set_state("connecting")
                    await first(self.connection.ready(), self.stopping.wait())
                    if self.stopping.is_set():
                        return
                    self.session = _ShardSession(self)
                    failed = await self.session.run()
                except asyncio.CancelledError:
                    raise
                except aio_pika.exceptions.CONNECTION_EXCEPTIONS:
                    pass  # the connection went away: the bus logs that once; wait for it to come back
                except Exception as e:
                    failed = True
                    log.warning("uplink shard %d: %r; retrying in %.1fs", self.shard, e, self.bus.retry_delay)
                finally:
                    self.session = None
                if failed or not self.connection.connected.is_set():
                    # After a handler failure: give the cause time to pass. After a lost connection:
                    # a beat, so a closing channel is not reopened on the connection going down.
                    delay = self.bus.retry_delay if failed else 0.05
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), delay)
        finally:
            self._set_state(None)

    def _set_state(self, state: str | None) -> None:
        if self.state is not None:
            metrics.SHARD_CONSUMERS.labels(self.state).dec()
        self.state = state
        if state is not None:
            metrics.SHARD_CONSUMERS.labels(state).inc()


class _ShardSession:
    """One channel's life: consume until the handler fails, the channel closes or the consumer stops.

    Deliveries of an earlier session (a channel that is going away) never reach a later one: each
    session has its own callback and state.
    """

    def __init__(self, consumer: ShardConsumer) -> None:
        self.consumer = consumer
        self.shard = consumer.shard
        self.pending: deque[_Pending] = deque()
        self.calls: set[asyncio.Task[None]] = set()
        self.failed = asyncio.Event()
        self.ack_lock = asyncio.Lock()
        self.channel: AbstractChannel | None = None

    @property
    def taking(self) -> bool:
        return not (self.failed.is_set() or self.consumer.stopping.is_set() or self.channel is None)

    def progressing(self, now: float, stall_timeout: float) -> bool:
        oldest = next((p for p in self.pending if not p.done), None)
        return oldest is None or now - oldest.since < stall_timeout

    async def run(self) -> bool:
        """Returns whether the handler failed (the caller then waits before the next session)."""
        bus = self.consumer.bus
        channel = aio_pika.Channel(self.consumer.connection, publisher_confirms=False)
        await channel.initialize()
        self.channel = channel
        try:
            await channel.set_qos(prefetch_count=bus.prefetch)
            queue = await bus.declare_shard(channel, self.shard)
            consumer_tag = await queue.consume(self.on_message)
            self.consumer._set_state("consuming")
            await first(channel.closed(), self.failed.wait(), self.consumer.stopping.wait())
            if self.consumer.stopping.is_set() and not self.consumer.abandoned and not channel.is_closed:
                # Graceful stop: no new deliveries, finish and ack the calls in flight.
                self.consumer._set_state("draining")
                with contextlib.suppress(Exception):
                    await queue.cancel(consumer_tag)
        finally:
            if self.consumer.abandoned:
                self.channel = None  # nothing more is acked on this channel: all of it comes again
            elif self.calls:
                # Calls in flight finish before anything is delivered again, so handler calls keep
                # queue order.
                await asyncio.wait(self.calls, timeout=bus.close_timeout)
            await self.ack_done_prefix()
            self.channel = None
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()  # the broker requeues every unacked message, in order
        return self.failed.is_set()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        # Runs up to its first await in delivery order (aio-pika starts one task per delivery, FIFO).
        entry = _Pending(message, time.monotonic())
        self.pending.append(entry)
        if not self.taking:
            return  # left unacked: requeued when the channel closes
        leases = self.consumer.bus.leases
        if leases is not None and not leases.holds(self.shard) and (
                not await leases.confirm(self.shard) or not self.taking):
            return  # the lease moved: the consumer is being abandoned, the broker redelivers this
        metrics.UPLINK_MESSAGES.inc()
        try:
            uplinks = decode_uplinks(message.body, redelivered=bool(message.redelivered))
        except UndecodableEnvelope as e:
            await self._dead_letter(entry, str(e))
            return
        task = asyncio.current_task()
        assert task is not None
        self.calls.add(task)
        try:
            await self.consumer.handler(uplinks)
        except Exception:
            log.warning("uplink shard %d: handler failed for %d uplinks; they will be delivered again",
                        self.shard, len(uplinks), exc_info=True)
            self.failed.set()
            return
        finally:
            self.calls.discard(task)
        entry.done = True
        await self.ack_done_prefix()

    async def _dead_letter(self, entry: _Pending, reason: str) -> None:
        queue = f"im.uplink.{self.shard}"
        try:
            await self.consumer.bus.dead_letter(entry.message, queue, reason)
        except Exception as e:  # not acked: the broker delivers it again, and we try again
            log.warning("uplink shard %d: could not dead-letter an undecodable message (%r)", self.shard, e)
            self.failed.set()
            return
        entry.done = True
        await self.ack_done_prefix()

    async def ack_done_prefix(self) -> None:
        async with self.ack_lock:
            last: _Pending | None = None
            while self.pending and self.pending[0].done:
                last = self.pending.popleft()
            if last is None or self.channel is None or self.channel.is_closed:
                return
            try:
                await last.message.ack(multiple=True)
            except Exception as e:  # the channel is gone: the broker redelivers these
                log.debug("uplink shard %d: ack failed (%r); messages will be redelivered", self.shard, e)


class Subscription:
    """A gateway's downlink queue: one handler call at a time, in queue order.

    Acks go `multiple=True`, at most every `ack_seconds` (or every `ack_every` downlinks), not one per
    downlink: on loopback every AMQP frame costs a write and a wake-up of the broker, and a gateway
    receives one downlink per batch logic commits. The prefetch still bounds what is unacked.
    """

    ack_every = 64
    ack_seconds = 0.1

    def __init__(self, gateway: str, handler: DownlinkHandler, dead_letter: DeadLetter) -> None:
        self.gateway = gateway
        self.handler = handler
        self._dead_letter = dead_letter
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._worker: asyncio.Task[None] | None = None
        self._consumer_tag: str | None = None

    async def start(self, channel: AbstractChannel, queue: AbstractQueue) -> None:
        self._channel, self._queue = channel, queue
        self._worker = asyncio.create_task(self._work(), name=f"rabbitmq-downlink-{self.gateway}")
        self._consumer_tag = await queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.put_nowait(message)  # bounded by the channel's prefetch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        unacked: AbstractIncomingMessage | None = None
        unacked_on: object = None
        count = 0
        ack_at = 0.0
        while True:
            if unacked is None:
                message = await self._inbox.get()
            else:
                try:
                    message = await asyncio.wait_for(self._inbox.get(), max(0.0, ack_at - loop.time()))
                except TimeoutError:
                    await _ack(unacked)
                    unacked, count = None, 0
                    continue
            try:
                channel = message.channel  # raises once the channel it came on has closed
            except aio_pika.exceptions.ChannelInvalidStateError:
                unacked, count = None, 0
                continue  # unacked, so the broker delivers it again on the new channel: skip this copy
            if unacked is not None and unacked_on is not channel:
                unacked, count = None, 0  # the channel was restored in between: those come again
            await self._handle(message)
            if unacked is None:
                ack_at = loop.time() + self.ack_seconds
            unacked, unacked_on, count = message, channel, count + 1
            if count >= self.ack_every:
                await _ack(unacked)
                unacked, count = None, 0

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            downlink = decode_downlink(message.body)
        except UndecodableEnvelope as e:
            try:
                await self._dead_letter(message, f"im.downlink.{self.gateway}", str(e))
            except Exception as error:  # noqa: BLE001 - best effort, as every downlink
                log.warning("downlink %s: could not dead-letter an undecodable message (%r)", self.gateway, error)
            return
        try:
            await self.handler(downlink)
        except Exception:
            log.exception("downlink %s: handler failed; the downlink is dropped", self.gateway)

    async def close(self, timeout: float) -> None:
        """Stop and delete the queue (it would expire anyway: a broker that is gone is not waited for)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._queue is not None:
            if self._consumer_tag is not None:  # a consumer the broker cancels makes aio-pika reconnect
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._queue.cancel(self._consumer_tag), timeout)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.delete(if_unused=False, if_empty=False), timeout)
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._channel.close(), timeout)


async def _ack(message: AbstractIncomingMessage) -> None:
    with contextlib.suppress(Exception):  # the channel is gone: the broker delivers those again
        await message.ack(multiple=True)
