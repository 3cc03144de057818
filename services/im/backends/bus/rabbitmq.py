"""`Bus` on RabbitMQ through aio-pika (docs/architecture.md has the whole message path).

Uplink: a durable direct exchange `im.messages` and durable queues `im.uplink.<n>`, n = 0..shards-1,
bound with routing key `<n>`. Each queue is declared `x-single-active-consumer`: however many logic
replicas subscribe, one of them at a time gets it, in queue order. Which replicas subscribe to which
queues is decided by shard leases (`im.backends.leases`); without leases a bus consumes every shard.

An uplink belongs to shard `shard_of(conversation)`. A gateway publishes the uplinks of every shard
one logic replica owns as one persistent AMQP message (up to `max_uplinks_per_message` uplinks) to
that replica's lead queue, and a shard changes queue only once this gateway's uplinks on the old one
are answered (`im.backends.bus.routes`): one AMQP message per replica per publish round, whatever
`shards` is, and conversations keep their order. Without a route table (`routes`) every shard goes
to its own queue. `publish` returns after the publisher confirms. Calls made while earlier ones await
their confirms are coalesced into shared AMQP messages (`max_publishes_in_flight`), so
single-message publishes from many connections still travel in batches. Both sides declare the topology, so nothing is
unroutable while no logic runs yet. Every process must use the same `shards` (nothing checks it).

Consuming a shard: see `im.backends.bus.consumers`.

Downlink: a direct exchange `im.downlink`; each gateway consumes `im.downlink.<gateway id>` bound with
routing key = gateway id. The queue is not durable and expires (`x-expires`) once no gateway has used it
for `downlink_expiry`, so a crashed gateway's queue goes away; a gateway that closes deletes it at once.
Downlinks are transient and unconfirmed: a lost one is caught up by the client's `sync`.

Dead letters: a message a process cannot decode (`UndecodableEnvelope`: garbage, or an envelope
version newer than this release reads) is published, with a confirm, to the fanout exchange
`im.dead-letter` and its durable queue `im.dead-letter` (headers say where it came from and why),
then acked. Nothing is ever acked away unread; an operator can inspect or re-publish them.

Connection: one robust connection with AMQP heartbeats every `heartbeat` seconds (a peer silent for
about two of them is dropped, so a hung replica's consumers go away in seconds) and a reconnect
attempt every `reconnect_interval`. Publishes wait for a lost connection to come back (within
`publish_timeout`) instead of failing at once, so a broker restart costs its downtime, not the
downtime plus the callers' back-off. A process logs one WARNING when the connection drops and one
INFO when it is back; the library's own reports of an expected disconnect are kept out of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
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

from im import metrics
from im.backends.base import DownlinkHandler, UplinkHandler
from im.backends.bus.consumers import ShardConsumer, Subscription
from im.backends.bus.routes import UplinkRouter, WantedRoute, shard_of
from im.backends.leases import ShardLeases
from im.contracts.envelopes import (
    ENVELOPE_VERSION,
    ENVELOPE_VERSIONS,
    Downlink,
    Uplink,
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
DEAD_LETTER = "im.dead-letter"


def _uplink_queue(shard: int) -> str:
    return f"im.uplink.{shard}"


def _downlink_queue(gateway: str) -> str:
    return f"im.downlink.{gateway}"


def _presence_queue(replica: str) -> str:
    return f"im.logic.{replica}"


class RabbitMqBus:
    def __init__(
        self,
        url: str,
        *,
        gateway_id: str | None = None,
        shards: int = 8,
        prefetch: int = 128,
        max_uplinks_per_message: int = 512,
        max_publishes_in_flight: int = 8,
        downlink_prefetch: int = 256,
        downlink_expiry: float = 60.0,
        publish_timeout: float = 10.0,
        deliver_timeout: float = 2.0,
        retry_delay: float = 1.0,
        close_timeout: float = 10.0,
        reconnect_interval: float = 0.5,
        heartbeat: int = 3,
        stall_timeout: float = 10.0,
        envelope_version: int = ENVELOPE_VERSION,
        routes: WantedRoute | None = None,
        leases: ShardLeases | None = None,
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
        :param retry_delay: seconds a shard waits after a failed handler.
        :param close_timeout: seconds `close` (and a shard given back) lets handler calls in flight finish.
        :param reconnect_interval: seconds between attempts to reconnect a lost connection.
        :param heartbeat: AMQP heartbeat timeout in seconds (whole seconds, the protocol's unit): the
            broker drops a connection it has not heard from in about that long.
        :param stall_timeout: seconds a delivery may wait for its handler before the shard counts as
            not making progress (its lease is then no longer renewed).
        :param envelope_version: the uplink envelope version `publish` writes (1 while logic replicas
            of a release before versioned envelopes still run).
        :param routes: the gateway's shard -> queue table (`ShardRoutes.wanted`); None: each shard to
            its own queue.
        :param leases: the logic side's shard leases; None: consume every shard.
        :param setting: the configuration name errors about `url` mention.
        """
        if not url.startswith(("amqp://", "amqps://")):
            raise ValueError(f"{setting}: expected amqp://user:password@host:port/vhost")
        counts = {"shards": shards, "prefetch": prefetch, "max_uplinks_per_message": max_uplinks_per_message,
                  "max_publishes_in_flight": max_publishes_in_flight, "downlink_prefetch": downlink_prefetch,
                  "heartbeat": heartbeat}
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if envelope_version not in ENVELOPE_VERSIONS:
            raise ValueError(f"envelope_version must be one of {ENVELOPE_VERSIONS}, got {envelope_version}")
        if leases is not None and leases.shards != shards:
            raise ValueError(f"the leases cover {leases.shards} shards, the bus {shards}")
        self._url = url
        self._gateway_id = gateway_id
        self._shards = shards
        self.prefetch = prefetch
        self._max_per_message = max_uplinks_per_message
        self._downlink_prefetch = downlink_prefetch
        self._downlink_expiry_ms = max(1, int(downlink_expiry * 1000))
        self._publish_timeout = publish_timeout
        self._deliver_timeout = deliver_timeout
        self.retry_delay = retry_delay
        self.close_timeout = close_timeout
        self._reconnect_interval = reconnect_interval
        self._heartbeat = heartbeat
        self.stall_timeout = stall_timeout
        self._envelope_version = envelope_version
        self._router = UplinkRouter(shards, routes) if routes is not None else None
        self.leases = leases
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._uplink_exchange: AbstractExchange | None = None
        self._downlink_exchange: AbstractExchange | None = None
        self._dead_letter_exchange: AbstractExchange | None = None
        self._outbox: list[_PublishRequest] = []
        self._outbox_ready = asyncio.Event()
        self._publish_slots = asyncio.Semaphore(max_publishes_in_flight)
        self._flusher: asyncio.Task[None] | None = None
        self._rounds: set[asyncio.Task[None]] = set()
        self._handler: UplinkHandler | None = None
        self._shard_consumers: dict[int, ShardConsumer] = {}
        self._shard_tasks: dict[int, asyncio.Task[None]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        """Consumers of shards given up at once, still closing their channel."""
        self._subscriptions: list[Subscription] = []
        self._probe: AbstractChannel | None = None
        self._down_since: float | None = None
        self._up_since = time.monotonic()
        self._closing = False
        _quiet_expected_disconnects()

    @property
    def where(self) -> str:
        """The broker without credentials, for messages."""
        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"

    @property
    def router(self) -> UplinkRouter | None:
        return self._router

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._connection is not None:
            return
        # A robust connection retries forever, even its first connect: build it here so a broker that
        # never answers can be given up on and the half-made connection closed.
        connection = aio_pika.RobustConnection(
            URL(self._url).update_query(heartbeat=self._heartbeat), reconnect_interval=self._reconnect_interval,
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
        connection.close_callbacks.add(self._connection_lost)
        connection.reconnect_callbacks.add(self._connection_back)
        try:
            publisher = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._publisher = publisher
            self._uplink_exchange = await self._declare_uplinks(publisher)
            self._dead_letter_exchange = await publisher.declare_exchange(
                DEAD_LETTER, ExchangeType.FANOUT, durable=True)
            dead = await publisher.declare_queue(DEAD_LETTER, durable=True)
            await dead.bind(DEAD_LETTER)
            downlinks = await self._connection.channel(publisher_confirms=False)
            self._downlink_exchange = await downlinks.declare_exchange(
                DOWNLINK_EXCHANGE, ExchangeType.DIRECT, durable=True)
        except _FAILURES as e:
            await self.close()
            raise Unavailable(f"RabbitMQ at {self.where} unavailable: {e}") from e

    async def close(self) -> None:
        self._closing = True
        if self._rounds:
            await asyncio.wait(self._rounds, timeout=self.close_timeout)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        for request in self._outbox:
            if not request.future.done():
                request.future.set_exception(Unavailable(f"RabbitMQ at {self.where}: bus closed"))
        self._outbox.clear()
        for consumer in self._shard_consumers.values():
            consumer.stop()
        if self._shard_tasks or self._retiring:
            # Handler calls in flight get `close_timeout` to finish and be acked; the rest is requeued.
            tasks = [*self._shard_tasks.values(), *self._retiring]
            _, late = await asyncio.wait(tasks, timeout=self.close_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.leases is not None:
            await self.leases.close()  # after the consumers stopped: nobody takes a shard still in use
        connected = self._connection is not None and self._connection.connected.is_set()
        for subscription in self._subscriptions:
            await subscription.close(self.close_timeout if connected else 0.5)
        self._shard_tasks.clear()
        self._shard_consumers.clear()
        self._subscriptions.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self.close_timeout)

    async def ping(self) -> None:
        connection = self._connection
        if connection is None or connection.is_closed or not connection.connected.is_set():
            raise Unavailable(f"RabbitMQ at {self.where}: not connected")

    def _connection_lost(self, _: object, error: BaseException | None = None) -> None:
        if self._closing or self._down_since is not None:
            return
        self._down_since = time.monotonic()
        log.warning("RabbitMQ at %s: connection lost (%s); reconnecting every %.1fs", self.where,
                    _reason(error), self._reconnect_interval)

    def _connection_back(self, _: object) -> None:
        if self._down_since is not None:
            log.info("RabbitMQ at %s: connected again after %.1fs", self.where, time.monotonic() - self._down_since)
        self._down_since = None
        self._up_since = time.monotonic()
        self._probe = None

    async def _declare_uplinks(self, channel: AbstractChannel) -> AbstractExchange:
        exchange = await channel.declare_exchange(UPLINK_EXCHANGE, ExchangeType.DIRECT, durable=True)
        for shard in range(self._shards):
            await self.declare_shard(channel, shard)
        return exchange

    async def declare_shard(self, channel: AbstractChannel, shard: int) -> AbstractQueue:
        queue = await channel.declare_queue(
            _uplink_queue(shard), durable=True, arguments={"x-single-active-consumer": True})
        await queue.bind(UPLINK_EXCHANGE, routing_key=str(shard))
        return queue

    def _require_connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise Unavailable(f"RabbitMQ at {self.where}: bus is not started")
        return self._connection

    async def dead_letter(self, message: AbstractIncomingMessage, queue: str, reason: str) -> None:
        """Keep an undecodable message in the dead-letter queue (confirmed), with where and why."""
        exchange = self._dead_letter_exchange
        assert exchange is not None
        headers = {**(message.headers or {}), "x-im-source-queue": queue, "x-im-reason": reason[:500]}
        await asyncio.wait_for(exchange.publish(
            aio_pika.Message(message.body, headers=headers, content_type=message.content_type,
                             delivery_mode=DeliveryMode.PERSISTENT),
            routing_key=queue), self._publish_timeout)
        metrics.DEAD_LETTERED.labels("uplink" if queue.startswith("im.uplink.") else "downlink").inc()
        log.error("%s: an undecodable message of %d bytes was moved to the dead-letter queue %s: %s",
                  queue, len(message.body), DEAD_LETTER, reason)

    # -- uplink ------------------------------------------------------------------------------------

    async def publish(self, uplinks: list[Uplink]) -> None:
        """Returns once RabbitMQ confirmed every uplink; `Unavailable` if it did not within `publish_timeout`.

        Calls are coalesced: while `max_publishes_in_flight` rounds await their confirms, new calls
        wait in an outbox and go out together in the next round, one AMQP message per target queue.
        A quiet bus sends a call at once; a busy one sends fewer, fuller messages. Rounds are written
        in call order, so a caller that publishes in order keeps that order per conversation. While
        the connection is down, calls wait for it (within `publish_timeout`).
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
                if self._router is not None:
                    held = self._router.held_back(u for r in self._outbox for u in r.uplinks)
                    if held:
                        await self._router.hold(held)
                requests, self._outbox = self._outbox, []
                by_queue = self._group(requests)
                round_ = asyncio.create_task(self._publish_round(requests, by_queue))
                self._rounds.add(round_)
                round_.add_done_callback(self._round_done)

    def _group(self, requests: list[_PublishRequest]) -> dict[int, list[Uplink]]:
        uplinks = (u for request in requests for u in request.uplinks)
        if self._router is not None:
            return self._router.assign(uplinks)
        by_shard: dict[int, list[Uplink]] = {}
        for uplink in uplinks:
            by_shard.setdefault(shard_of(uplink.conversation, self._shards), []).append(uplink)
        return by_shard

    def _round_done(self, round_: asyncio.Task[None]) -> None:
        self._rounds.discard(round_)
        self._publish_slots.release()

    async def _publish_round(self, requests: list[_PublishRequest], by_queue: dict[int, list[Uplink]]) -> None:
        exchange = self._uplink_exchange
        connection = self._connection
        assert exchange is not None and connection is not None
        messages = [(queue, aio_pika.Message(encode_uplinks(part, version=self._envelope_version),
                                             delivery_mode=DeliveryMode.PERSISTENT,
                                             content_type="application/json"))
                    for queue, group in by_queue.items() for part in _chunks(group, self._max_per_message)]
        confirmed = False
        error: BaseException | None = None
        try:
            # Also bounds the wait for a reconnection, which aio-pika's own publish timeout does not.
            async with asyncio.timeout(self._publish_timeout):
                while True:
                    await connection.connected.wait()
                    # Tasks start in creation order, and rounds are created in call order: frames keep
                    # that order.
                    tasks = [asyncio.ensure_future(exchange.publish(message, routing_key=str(queue), mandatory=True))
                             for queue, message in messages]
                    try:
                        await asyncio.gather(*tasks)
                        metrics.UPLINK_MESSAGES.inc(len(tasks))
                        break
                    except _FAILURES as e:
                        for task in tasks:
                            task.cancel()
                        error = e
                        lost = isinstance(e, aio_pika.exceptions.ChannelInvalidStateError)
                        if connection.connected.is_set() and not lost:
                            raise
                        # Lost on the way, or the channel is being restored: send it all again once
                        # connected. A copy that did arrive is stored once anyway (logic knows it by
                        # (sender, cid)).
                        await asyncio.sleep(0.05)
            confirmed = True
        except _FAILURES as e:
            error = e
        finally:  # also on cancellation and on errors nobody expected: never leave a caller hanging
            for request in requests:
                if request.future.done():
                    continue
                if confirmed:
                    request.future.set_result(None)
                else:
                    request.future.set_exception(
                        Unavailable(f"RabbitMQ at {self.where}: publish failed: {error!r}"))

    async def consume(self, handler: UplinkHandler) -> None:
        """Start consuming in the background and return: every shard, or those the leases give us."""
        connection = self._require_connection()
        self._handler = handler
        if self.leases is None:
            for shard in range(self._shards):
                await self.start_shard(shard)
            return
        # Present before claiming anything: other replicas take over a replica whose presence is gone.
        channel = await connection.channel(publisher_confirms=False)
        presence = await channel.declare_queue(_presence_queue(self.leases.replica_id), auto_delete=True)
        await presence.consume(_ignore)
        await self.leases.start(self)

    # -- `ShardConsumers`, driven by the leases ------------------------------------------------------

    async def start_shard(self, shard: int) -> None:
        if shard in self._shard_tasks and not self._shard_tasks[shard].done():
            return
        assert self._handler is not None and self._connection is not None
        consumer = ShardConsumer(self, self._connection, shard, self._handler)
        self._shard_consumers[shard] = consumer
        self._shard_tasks[shard] = asyncio.create_task(consumer.run(), name=f"rabbitmq-shard-{shard}")

    async def stop_shard(self, shard: int, *, drain: bool) -> None:
        consumer = self._shard_consumers.pop(shard, None)
        task = self._shard_tasks.pop(shard, None)
        if consumer is None or task is None:
            return
        consumer.stop(drain=drain)
        if drain:
            # The lease is given back after this returns, so the next holder never overlaps with us.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(task), self.close_timeout + 1)
        if not task.done():
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    def shard_progressing(self, shard: int) -> bool:
        consumer = self._shard_consumers.get(shard)
        return consumer is None or consumer.progressing()

    async def replica_present(self, replica: str) -> bool | None:
        """Whether that replica's presence queue exists, i.e. its connection to the broker is alive.

        None while our own connection is down or just came back (the others may not have redeclared
        theirs yet), so a broker restart never looks like every other replica died.
        """
        connection = self._connection
        if connection is None or not connection.connected.is_set() or \
                time.monotonic() - self._up_since < 3 * self._reconnect_interval + 2:
            return None
        try:
            if self._probe is None or self._probe.is_closed:
                # Not robust: a passive declare of a missing queue closes the channel (404), by design.
                probe = aio_pika.Channel(connection, publisher_confirms=False)
                await probe.initialize()
                self._probe = probe
            await self._probe.declare_queue(_presence_queue(replica), passive=True)
            return True
        except aio_pika.exceptions.ChannelNotFoundEntity:
            self._probe = None
            return False
        except Exception:  # noqa: BLE001 - cannot tell now; asked again next round
            self._probe = None
            return None

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
        """Consume `im.downlink.<gateway>`; `handler` is called for one downlink at a time, in order.

        With a route table, the acks and refusals in each downlink also tell the router which
        uplinks are answered (a shard moves to another queue only once its uplinks are).
        """
        connection = self._require_connection()
        router = self._router
        if router is not None:
            inner = handler

            async def handler(downlink: Downlink) -> None:
                for ack in downlink.acks:
                    router.answered(ack.conn, ack.cid)
                for rejection in downlink.rejections:
                    router.answered(rejection.conn, rejection.cid)
                await inner(downlink)

        subscription = Subscription(gateway, handler, self.dead_letter)
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


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def _ignore(message: AbstractIncomingMessage) -> None:
    await message.ack()


def _chunks(items: list[Uplink], size: int) -> Iterable[list[Uplink]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "closed"
    return str(error) or type(error).__name__


@dataclass(slots=True)
class _PublishRequest:
    uplinks: list[Uplink]
    future: asyncio.Future[None]


# -- the library's own reports of an expected disconnect ----------------------------------------------

_EXPECTED = {
    # aiormq: the broker closed (restart, shutdown) or cannot be reached while reconnecting.
    "aiormq.connection": ("Unexpected connection close from remote", "Cancelling cause reader exited abnormally",
                          "error when creating transport", "Server connection %r was stuck"),
    # aio-pika: reconnect attempts, and channel close callbacks run on a connection already gone.
    "aio_pika.robust_connection": ("Connection attempt to", "Connection to %s closed", "Reconnect attempt failed"),
    "aio_pika.tools": ("Callback %r error",),
}


class _ExpectedDisconnects(logging.Filter):
    """Drops the library's ERROR/WARNING lines (and tracebacks) about a connection going away: the bus
    reports an outage itself, once. Anything else the libraries log passes untouched."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self._prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not message.startswith(self._prefixes)


def _quiet_expected_disconnects() -> None:
    for name, prefixes in _EXPECTED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ExpectedDisconnects) for f in logger.filters):
            logger.addFilter(_ExpectedDisconnects(prefixes))
