"""`Bus` on RabbitMQ through aio-pika.

Uplink: a durable direct exchange `im.messages` and durable queues `im.uplink.<n>`, n = 0..shards-1,
bound with routing key `<n>`. An uplink goes to shard `crc32(conversation) % shards`, so one
conversation always lands on one queue; each queue is declared `x-single-active-consumer`, so however
many logic replicas consume, one of them at a time gets a shard, in queue order. One `publish` sends
one persistent AMQP message per shard it touches (up to `max_uplinks_per_message` uplinks each) and
returns after the publisher confirms. Calls made while earlier ones await their confirms are
coalesced into shared AMQP messages (`max_publishes_in_flight`), so single-message publishes from many
connections still travel in batches. Both sides declare the topology, so nothing is unroutable while
no logic runs yet. Every process must use the same `shards` (nothing checks it).

Consuming a shard (its own channel, `prefetch` AMQP messages in flight):
- the handler is called once per AMQP message, in delivery order; several calls may be in flight at
  once (the handler is expected to wait for a batch commit);
- acks go out in delivery order only (`multiple=True` up to the last message whose handler, and every
  handler before it, has returned), so a message is never acked before the ones ahead of it;
- when a handler raises, the shard stops calling the handler, lets the calls in flight finish, acks
  what may be acked, and closes the channel: RabbitMQ puts the rest back in queue order and delivers it
  again (to this or another replica) after `retry_delay`. A lost connection does the same. Either way a
  message the handler had already taken may come again: the store recognises it by `(sender, cid)`.
  Calls already in flight behind a failed one may still succeed before it comes again, so a handler
  that must keep order across failures retries (as the batch writer does) rather than raise.

Downlink: a direct exchange `im.downlink`; each gateway consumes `im.downlink.<gateway id>` bound with
routing key = gateway id. The queue is not durable and expires (`x-expires`) once no gateway has used it
for `downlink_expiry`, so a crashed gateway's queue goes away; a gateway that closes deletes it at once.
Downlinks are transient and unconfirmed: a lost one is caught up by the client's `sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections import deque
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    DeliveryMode,
    ExchangeType,
)
from yarl import URL

from im.backends.base import DownlinkHandler, UplinkHandler
from im.contracts.envelopes import (
    Downlink,
    Uplink,
    decode_downlink,
    decode_uplinks,
    encode_downlink,
    encode_uplinks,
)
from im.protocol.errors import Unavailable

__all__ = ["RabbitMqBus", "shard_of"]

log = logging.getLogger(__name__)

# What a broker that is down, restarting or refusing looks like (aio-pika's list, plus timeouts).
_FAILURES = (*aio_pika.exceptions.CONNECTION_EXCEPTIONS, asyncio.TimeoutError)

UPLINK_EXCHANGE = "im.messages"
DOWNLINK_EXCHANGE = "im.downlink"


def shard_of(conversation: str, shards: int) -> int:
    """Stable across processes and Python versions (unlike `hash`)."""
    return zlib.crc32(conversation.encode()) % shards


def _uplink_queue(shard: int) -> str:
    return f"im.uplink.{shard}"


def _downlink_queue(gateway: str) -> str:
    return f"im.downlink.{gateway}"


class RabbitMqBus:
    def __init__(
        self,
        url: str,
        *,
        gateway_id: str | None = None,
        shards: int = 8,
        prefetch: int = 32,
        max_uplinks_per_message: int = 512,
        max_publishes_in_flight: int = 8,
        downlink_prefetch: int = 256,
        downlink_expiry: float = 60.0,
        publish_timeout: float = 10.0,
        deliver_timeout: float = 2.0,
        retry_delay: float = 1.0,
        close_timeout: float = 10.0,
        reconnect_interval: float = 2.0,
        setting: str = "IM_RABBITMQ_URL",
    ) -> None:
        """
        :param url: `amqp://user:password@host:port/vhost`.
        :param gateway_id: this gateway's id, only for logging (`subscribe` names the gateway).
        :param shards: uplink queues; the same in every process.
        :param prefetch: AMQP messages (each up to `max_uplinks_per_message` uplinks) in flight per shard.
        :param max_uplinks_per_message: most uplinks one AMQP message carries.
        :param max_publishes_in_flight: publish rounds awaiting confirms at once; more calls wait and
            go out together (see `publish`).
        :param downlink_prefetch: downlink AMQP messages in flight per gateway.
        :param downlink_expiry: seconds a gateway's downlink queue outlives its last consumer.
        :param publish_timeout: seconds `start` and `publish` wait for the broker (and its confirms).
        :param deliver_timeout: seconds `deliver` waits for the broker; a downlink is best effort, the
            client catches up with `sync`.
        :param retry_delay: seconds a shard waits after a failed handler or a lost channel.
        :param close_timeout: seconds `close` lets uplink handler calls in flight finish.
        :param reconnect_interval: seconds between attempts to reconnect a lost connection.
        :param setting: the configuration name errors about `url` mention.
        """
        if not url.startswith(("amqp://", "amqps://")):
            raise ValueError(f"{setting}: expected amqp://user:password@host:port/vhost")
        counts = {"shards": shards, "prefetch": prefetch, "max_uplinks_per_message": max_uplinks_per_message,
                  "max_publishes_in_flight": max_publishes_in_flight, "downlink_prefetch": downlink_prefetch}
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self._url = url
        self._gateway_id = gateway_id
        self._shards = shards
        self._prefetch = prefetch
        self._max_per_message = max_uplinks_per_message
        self._downlink_prefetch = downlink_prefetch
        self._downlink_expiry_ms = max(1, int(downlink_expiry * 1000))
        self._publish_timeout = publish_timeout
        self._deliver_timeout = deliver_timeout
        self._retry_delay = retry_delay
        self._close_timeout = close_timeout
        self._reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._uplink_exchange: AbstractExchange | None = None
        self._downlink_exchange: AbstractExchange | None = None
        self._outbox: list[_PublishRequest] = []
        self._outbox_ready = asyncio.Event()
        self._publish_slots = asyncio.Semaphore(max_publishes_in_flight)
        self._flusher: asyncio.Task[None] | None = None
        self._rounds: set[asyncio.Task[None]] = set()
        self._shard_tasks: list[asyncio.Task[None]] = []
        self._shard_consumers: list[_ShardConsumer] = []
        self._subscriptions: list[_Subscription] = []

    @property
    def where(self) -> str:
        """The broker without credentials, for messages."""
        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._connection is not None:
            return
        # A robust connection retries forever, even its first connect: build it here so a broker that
        # never answers can be given up on and the half-made connection closed.
        connection = aio_pika.RobustConnection(
            URL(self._url), reconnect_interval=self._reconnect_interval,
            client_properties={"connection_name": f"im {self._gateway_id or 'logic'}"},
        )
        try:
            await connection.connect(timeout=self._publish_timeout)
        except BaseException as e:
            await connection.close()
            if isinstance(e, _FAILURES):
                raise Unavailable(f"RabbitMQ at {self.where} unavailable: {e}") from e
            raise
        self._connection = connection
        try:
            publisher = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._uplink_exchange = await self._declare_uplinks(publisher)
            downlinks = await self._connection.channel(publisher_confirms=False)
            self._downlink_exchange = await downlinks.declare_exchange(
                DOWNLINK_EXCHANGE, ExchangeType.DIRECT, durable=True)
        except _FAILURES as e:
            await self.close()
            raise Unavailable(f"RabbitMQ at {self.where} unavailable: {e}") from e

    async def close(self) -> None:
        if self._rounds:
            await asyncio.wait(self._rounds, timeout=self._close_timeout)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        for request in self._outbox:
            if not request.future.done():
                request.future.set_exception(Unavailable(f"RabbitMQ at {self.where}: bus closed"))
        self._outbox.clear()
        for consumer in self._shard_consumers:
            consumer.stop()
        if self._shard_tasks:
            # Handler calls in flight get `close_timeout` to finish and be acked; the rest is requeued.
            _, late = await asyncio.wait(self._shard_tasks, timeout=self._close_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._shard_tasks, return_exceptions=True)
        connected = self._connection is not None and self._connection.connected.is_set()
        for subscription in self._subscriptions:
            await subscription.close(self._close_timeout if connected else 0.5)
        self._shard_tasks.clear()
        self._shard_consumers.clear()
        self._subscriptions.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self._close_timeout)

    async def ping(self) -> None:
        connection = self._connection
        if connection is None or connection.is_closed or not connection.connected.is_set():
            raise Unavailable(f"RabbitMQ at {self.where}: not connected")

    async def _declare_uplinks(self, channel: AbstractChannel) -> AbstractExchange:
        exchange = await channel.declare_exchange(UPLINK_EXCHANGE, ExchangeType.DIRECT, durable=True)
        for shard in range(self._shards):
            await self._declare_shard(channel, shard)
        return exchange

    async def _declare_shard(self, channel: AbstractChannel, shard: int) -> AbstractQueue:
        queue = await channel.declare_queue(
            _uplink_queue(shard), durable=True, arguments={"x-single-active-consumer": True})
        await queue.bind(UPLINK_EXCHANGE, routing_key=str(shard))
        return queue

    def _require_connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise Unavailable(f"RabbitMQ at {self.where}: bus is not started")
        return self._connection

    # -- uplink ------------------------------------------------------------------------------------

    async def publish(self, uplinks: list[Uplink]) -> None:
        """Returns once RabbitMQ confirmed every uplink; `Unavailable` if it did not within `publish_timeout`.

        Calls are coalesced: while `max_publishes_in_flight` rounds await their confirms, new calls
        wait in an outbox and go out together in the next round, one AMQP message per shard. A quiet
        bus sends a call at once; a busy one sends fewer, fuller messages. Rounds are written in call
        order, so a caller that publishes in order keeps that order per conversation.
        """
        if not uplinks:
            return
        self._require_connection()
        request = _PublishRequest(uplinks, asyncio.get_running_loop().create_future())
        request.future.add_done_callback(_retrieve)  # a caller that timed out no longer looks at it
        self._outbox.append(request)
        self._outbox_ready.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="rabbitmq-publisher")
        try:
            async with asyncio.timeout(self._publish_timeout):
                await asyncio.shield(request.future)
        except TimeoutError:
            raise Unavailable(f"RabbitMQ at {self.where}: publish not confirmed within "
                              f"{self._publish_timeout}s") from None

    async def _flush(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                await self._publish_slots.acquire()
                requests, self._outbox = self._outbox, []
                round_ = asyncio.create_task(self._publish_round(requests))
                self._rounds.add(round_)
                round_.add_done_callback(self._round_done)

    def _round_done(self, round_: asyncio.Task[None]) -> None:
        self._rounds.discard(round_)
        self._publish_slots.release()

    async def _publish_round(self, requests: list[_PublishRequest]) -> None:
        exchange = self._uplink_exchange
        assert exchange is not None
        by_shard: dict[int, list[Uplink]] = {}
        for request in requests:
            for uplink in request.uplinks:
                by_shard.setdefault(shard_of(uplink.conversation, self._shards), []).append(uplink)
        # Tasks start in creation order, and rounds are created in call order: frames keep that order.
        tasks = [
            asyncio.ensure_future(exchange.publish(
                aio_pika.Message(encode_uplinks(part), delivery_mode=DeliveryMode.PERSISTENT,
                                 content_type="application/json"),
                routing_key=str(shard), mandatory=True))
            for shard, group in by_shard.items()
            for part in _chunks(group, self._max_per_message)
        ]
        confirmed = False
        error: BaseException | None = None
        try:
            # Also bounds the wait for a reconnection, which aio-pika's own publish timeout does not.
            async with asyncio.timeout(self._publish_timeout):
                await asyncio.gather(*tasks)
            confirmed = True
        except _FAILURES as e:
            error = e
        finally:  # also on cancellation and on errors nobody expected: never leave a caller hanging
            for task in tasks:
                task.cancel()
            for request in requests:
                if request.future.done():
                    continue
                if confirmed:
                    request.future.set_result(None)
                else:
                    request.future.set_exception(
                        Unavailable(f"RabbitMQ at {self.where}: publish failed: {error!r}"))

    async def consume(self, handler: UplinkHandler) -> None:
        """Start consuming every shard in the background; returns at once."""
        connection = self._require_connection()
        for shard in range(self._shards):
            consumer = _ShardConsumer(self, connection, shard, handler)
            self._shard_consumers.append(consumer)
            self._shard_tasks.append(asyncio.create_task(consumer.run(), name=f"rabbitmq-shard-{shard}"))

    # -- downlink ----------------------------------------------------------------------------------

    async def deliver(self, downlink: Downlink) -> None:
        self._require_connection()
        exchange = self._downlink_exchange
        assert exchange is not None
        try:
            await asyncio.wait_for(exchange.publish(
                aio_pika.Message(encode_downlink(downlink), delivery_mode=DeliveryMode.NOT_PERSISTENT,
                                 content_type="application/json"),
                routing_key=downlink.gateway, mandatory=False), self._deliver_timeout)
        except _FAILURES as e:
            raise Unavailable(f"RabbitMQ at {self.where}: downlink publish failed: {e!r}") from e

    async def subscribe(self, gateway: str, handler: DownlinkHandler) -> None:
        """Consume `im.downlink.<gateway>`; `handler` is called for one downlink at a time, in order."""
        connection = self._require_connection()
        subscription = _Subscription(gateway, handler)
        try:
            channel = await connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=self._downlink_prefetch)
            queue = await channel.declare_queue(
                _downlink_queue(gateway), durable=False,
                arguments={"x-expires": self._downlink_expiry_ms, "x-message-ttl": self._downlink_expiry_ms})
            await queue.bind(DOWNLINK_EXCHANGE, routing_key=gateway)
            await subscription.start(channel, queue)
        except _FAILURES as e:
            await subscription.close(0.5)
            raise Unavailable(f"RabbitMQ at {self.where}: cannot subscribe {gateway}: {e!r}") from e
        self._subscriptions.append(subscription)


async def _first(*waits: Awaitable[object]) -> None:
    """Wait until one of `waits` is done, then cancel the others."""
    futures = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _chunks(items: list[Uplink], size: int) -> Iterable[list[Uplink]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass(slots=True)
class _PublishRequest:
    uplinks: list[Uplink]
    future: asyncio.Future[None]


@dataclass(slots=True)
class _Pending:
    message: AbstractIncomingMessage
    done: bool = False


class _ShardConsumer:
    """Consumes one uplink queue, one channel (a `_ShardSession`) at a time; see the module docstring."""

    def __init__(self, bus: RabbitMqBus, connection: AbstractRobustConnection, shard: int,
                 handler: UplinkHandler) -> None:
        self.bus = bus
        self.connection = connection
        self.shard = shard
        self.handler = handler
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await _first(self.connection.ready(), self.stopping.wait())
                if self.stopping.is_set():
                    return
                await _ShardSession(self).run()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("uplink shard %d: %r; retrying in %.1fs", self.shard, e, self.bus._retry_delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.bus._retry_delay)


class _ShardSession:
    """One channel's life: consume until the handler fails, the channel closes or the consumer stops.

    Deliveries of an earlier session (a channel that is going away) never reach a later one: each
    session has its own callback and state.
    """

    def __init__(self, consumer: _ShardConsumer) -> None:
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

    async def run(self) -> None:
        bus = self.consumer.bus
        channel = aio_pika.Channel(self.consumer.connection, publisher_confirms=False)
        await channel.initialize()
        self.channel = channel
        try:
            await channel.set_qos(prefetch_count=bus._prefetch)
            queue = await bus._declare_shard(channel, self.shard)
            consumer_tag = await queue.consume(self.on_message)
            await _first(channel.closed(), self.failed.wait(), self.consumer.stopping.wait())
            if self.consumer.stopping.is_set() and not channel.is_closed:
                # Graceful stop: no new deliveries, finish and ack the calls in flight.
                with contextlib.suppress(Exception):
                    await queue.cancel(consumer_tag)
        finally:
            # Calls in flight finish before anything is delivered again, so handler calls keep queue order.
            if self.calls:
                await asyncio.gather(*self.calls, return_exceptions=True)
            await self.ack_done_prefix()
            self.channel = None
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()  # the broker requeues every unacked message, in order
        if self.failed.is_set():
            raise RuntimeError("the uplink handler failed; unacked messages are requeued")

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        # Runs up to its first await in delivery order (aio-pika starts one task per delivery, FIFO).
        entry = _Pending(message)
        self.pending.append(entry)
        if not self.taking:
            return  # left unacked: requeued when the channel closes
        try:
            uplinks = decode_uplinks(message.body)
        except Exception:
            log.error("uplink shard %d: dropping an undecodable message of %d bytes", self.shard,
                      len(message.body), exc_info=True)
            entry.done = True
            await self.ack_done_prefix()
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
                log.info("uplink shard %d: ack failed (%r); messages will be redelivered", self.shard, e)


class _Subscription:
    """A gateway's downlink queue: one handler call at a time, in queue order."""

    def __init__(self, gateway: str, handler: DownlinkHandler) -> None:
        self.gateway = gateway
        self.handler = handler
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
        while True:
            message = await self._inbox.get()
            try:
                message.channel  # noqa: B018 - raises once the channel it came on has closed
            except aio_pika.exceptions.ChannelInvalidStateError:
                continue  # unacked, so the broker delivers it again on the new channel: skip this copy
            try:
                await self.handler(decode_downlink(message.body))
            except Exception:
                log.exception("downlink %s: handler failed; the downlink is dropped", self.gateway)
            with contextlib.suppress(Exception):
                await message.ack()

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
