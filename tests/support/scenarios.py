"""End-to-end scenarios, shared by the local distributed tests and the kind suite (`e2e/`).

Each scenario is a plain async function over an `Environment`: the base URLs of the gateways that
serve now, and callbacks for what only the environment can do (scale the gateways, kill one, roll out
a configuration change). `tests/distributed/test_scenarios.py` implements them with local processes,
`e2e/` with kubectl against a kind cluster.

The clients here follow the rule that makes "nothing lost" whole (docs/protocol.md): keep every
message unacknowledged until its `ack`; after any reconnect, `sync` from the highest `seq` seen and
resend the unacknowledged ones with the same `cid` (logic stores a `(sender, cid)` once and answers a
repeat with the original id and seq). A `reconnect` frame is honoured: wait `after_ms`, then move to
another gateway. Every scenario ends with `verify`, which checks from each user's inbox (over HTTP)
that every message was stored exactly once, reached each recipient exactly once, and that every inbox
`seq` is gapless.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import secrets
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from im.client import ChatConnection, HttpClient, HttpError, Login

__all__ = [
    "Environment", "ResilientClient", "Sent", "gateway_connections", "verify",
    "accounts_and_private_chat", "group_chat", "connections_spread_after_scaling",
    "gateway_dies_mid_conversation", "rolling_update_without_loss", "SCENARIOS",
]


class Environment(Protocol):
    """What a scenario needs from the place the cluster runs in."""

    async def gateways(self) -> list[str]:
        """Base URLs (`http://host:port`) of the gateways serving now, one per gateway."""
        ...

    async def scale_gateways(self, replicas: int) -> None:
        """Return once exactly `replicas` gateways serve (and `gateways()` lists them)."""
        ...

    async def kill_gateway(self, url: str) -> None:
        """The gateway behind `url` dies without a drain (SIGKILL; a force-deleted pod)."""
        ...

    async def rolling_update(self) -> None:
        """Change the gateways' configuration so that each is replaced, one at a time, the old one
        drained by SIGTERM; return once the last old gateway is gone."""
        ...


_ids = itertools.count()


def unique_email(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}-{next(_ids)}@example.test"


def gateway_connections(url: str) -> int:
    """Open WebSocket sessions of one gateway, as its /readyz reports them (the same count as its
    `im_gateway_connections`, which is on the metrics port only)."""
    with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
        return int(orjson.loads(response.read())["connections"])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str, period: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(period)
    raise AssertionError(f"not within {timeout}s: {what}")


@dataclass(frozen=True)
class Sent:
    sender: int
    cid: str
    content: str
    to: int | None = None
    group: int | None = None


@dataclass
class ResilientClient:
    """A chat client that survives its gateway: reconnects elsewhere, syncs, resends unacked sends."""

    env: Environment
    login: Login
    name: str = ""
    url: str = ""
    connection: ChatConnection | None = None
    unacked: dict[str, Sent] = field(default_factory=dict)
    acked: dict[str, tuple[int, int]] = field(default_factory=dict)
    """cid -> (message id, my seq)."""
    acked_via: dict[str, str] = field(default_factory=dict)
    """cid -> the gateway whose connection brought its first `ack` frame."""
    received: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Messages pushed to me or returned by sync, by id."""
    seen_ids: set[int] = field(default_factory=set)
    """Ids of everything in my inbox I know of: received messages and my own acked sends."""
    sent: list[Sent] = field(default_factory=list)
    gateways_used: list[str] = field(default_factory=list)
    reconnect_frames: list[int] = field(default_factory=list)
    """`after_ms` of every `reconnect` frame received."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    _open: set[ChatConnection] = field(default_factory=set)
    _last_sent_on: dict[str, ChatConnection] = field(default_factory=dict)
    """cid -> the connection it last went out on."""
    _seqs: set[int] = field(default_factory=set)
    _contiguous: int = 0
    _leaving: bool = False
    _moving: asyncio.Task[None] | None = None
    _resend: asyncio.TimerHandle | None = None
    _synced: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _failures: list[BaseException] = field(default_factory=list)
    """What ended a task of mine with an error (a reader that choked on a frame): settle reports it."""
    _stopped: bool = False

    @property
    def user_id(self) -> int:
        return int(self.login.user_id)

    @property
    def synced_seq(self) -> int:
        """The highest seq below which I have seen everything: where a sync starts. (Not simply the
        highest seen: pushes from different logic shards may arrive out of seq order, and one lost
        with a dead connection would be skipped.)"""
        return self._contiguous

    def _saw_seq(self, seq: int) -> None:
        self._seqs.add(seq)
        while self._contiguous + 1 in self._seqs:
            self._contiguous += 1
            self._seqs.discard(self._contiguous)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._failures.append(task.exception())  # type: ignore[arg-type]

    async def connect(self, url: str | None = None, *, avoid: str | None = None) -> None:
        """Open a connection (to `url`, or any serving gateway but `avoid`), sync, resend unacked."""
        deadline = time.monotonic() + 60
        delay = 0.1
        while True:
            if url:
                candidates = [url]
            else:
                serving = await self.env.gateways()
                candidates = [u for u in serving if u != avoid] or serving
                random.shuffle(candidates)
            for candidate in candidates:
                try:
                    connection = await ChatConnection.open(
                        HttpClient(candidate).ws_url, self.login.token, open_timeout=5)
                except Exception:  # noqa: BLE001 - refused, draining or gone: try the next gateway
                    continue
                self._adopt(candidate, connection)
                await self.sync()
                self._resend_unacked()
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no gateway accepted a connection in 60s (avoiding {avoid})")
            url = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _adopt(self, url: str, connection: ChatConnection) -> None:
        # Make before break: a draining gateway still answers the sends it took, then closes the old
        # connection itself (its reader keeps running until then).
        self.url, self.connection, self._leaving = url, connection, False
        self._open.add(connection)
        self.gateways_used.append(url)
        self._spawn(self._read(connection, url))

    async def sync(self, timeout: float = 20) -> None:
        """Everything in my inbox after `synced_seq`; returns once the last page is in."""
        self._synced.clear()
        await self._send_frame({"type": "sync", "after": self.synced_seq, "limit": 100})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._synced.wait(), timeout)

    async def send(self, cid: str, content: str, *, to: int | None = None, group: int | None = None) -> None:
        message = Sent(self.user_id, cid, content, to, group)
        self.sent.append(message)
        self.unacked[cid] = message
        await self._send_message(message)

    async def _send_message(self, message: Sent) -> None:
        frame: dict[str, Any] = {"type": "send", "cid": message.cid, "content": message.content}
        if message.group is not None:
            frame["group"] = message.group
        else:
            frame["to"] = message.to
        await self._send_frame(frame, message.cid)

    async def _send_frame(self, frame: dict[str, Any], cid: str | None = None) -> None:
        connection = self.connection
        if connection is None or self._leaving:
            return  # kept: unacked sends go out again after the reconnect, which also syncs
        if cid is not None:
            self._last_sent_on[cid] = connection
        with contextlib.suppress(Exception):
            await connection.send_frame(frame)

    def _resend_unacked(self, *, force: bool = False) -> None:
        """Send again what is not acked, except what went out on a connection still open to a draining
        gateway: that one answers it before closing, and it is resent only if it did not."""
        for message in list(self.unacked.values()):
            previous = self._last_sent_on.get(message.cid)
            if not force and previous is not None and previous is not self.connection and previous in self._open:
                continue
            self._spawn(self._send_message(message))

    def _resend_later(self, delay: float = 0.5) -> None:
        if self._resend is None:
            def fire() -> None:
                self._resend = None
                self._resend_unacked()
            self._resend = asyncio.get_running_loop().call_later(delay, fire)

    async def _read(self, connection: ChatConnection, url: str) -> None:
        while True:
            frame = await connection.frames.get()
            kind = frame["type"]
            if kind == "ack":
                self.unacked.pop(frame["cid"], None)
                self.acked[frame["cid"]] = (frame["id"], frame["seq"])
                self.acked_via.setdefault(frame["cid"], url)
                self.seen_ids.add(frame["id"])
                self._saw_seq(frame["seq"])
            elif kind == "msg":
                self._record(frame)
            elif kind == "sync":
                for message in frame["messages"]:
                    self._record(message)
                if frame["more"]:
                    after = frame["messages"][-1]["seq"]
                    with contextlib.suppress(Exception):
                        await connection.send_frame({"type": "sync", "after": after, "limit": 100})
                elif connection is self.connection:
                    self._synced.set()
            elif kind == "reconnect":
                self.reconnect_frames.append(frame["after_ms"])
                self._move(frame["after_ms"] / 1000)
            elif kind == "error":
                self.errors.append(frame)
                if frame.get("cid") in self.unacked and frame["code"] in ("unavailable", "rate_limited"):
                    self._resend_later()
            elif "seq" in frame:  # an inbox event (ARCHITECTURE.md 4.1): it takes a seq of mine too
                self._saw_seq(frame["seq"])
            elif kind == "_closed":
                self.closes.append(frame["code"])
                self._open.discard(connection)
                if self._stopped:
                    return
                if connection is self.connection:
                    self._move(0.05)
                else:
                    self._resend_unacked()  # what the old gateway left unanswered
                return

    def _record(self, message: dict[str, Any]) -> None:
        if message.get("type", "msg") != "msg":
            self._saw_seq(message["seq"])
            return
        self.received[message["id"]] = message
        self.seen_ids.add(message["id"])
        self._saw_seq(message["seq"])
        if message["from"] == self.user_id and message.get("cid") in self.unacked:
            # My own message, seen through sync: it is stored, which is all its ack would have said.
            self.acked[message["cid"]] = (message["id"], message["seq"])
            self.unacked.pop(message["cid"], None)

    def _move(self, after: float) -> None:
        """Stop using this connection; after `after` seconds connect to another gateway (once at a time)."""
        self._leaving = True
        if self._moving is None:
            self._moving = asyncio.create_task(self._move_after(after, self.url))

    async def _move_after(self, after: float, leaving: str) -> None:
        try:
            await asyncio.sleep(after)
            await self.connect(avoid=leaving)
        finally:
            self._moving = None

    async def settle(self, timeout: float = 60) -> None:
        """Wait for an ack of every send (resending now and then), then sync one last time."""
        deadline = time.monotonic() + timeout
        next_resend = time.monotonic() + 5
        while self.unacked or self._moving is not None:
            if self._failures:
                raise AssertionError(f"{self.name}: a task of the client failed") from self._failures[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {len(self.unacked)} sends never acked: "
                                     f"{sorted(self.unacked)[:10]}; errors {self.errors[-5:]}")
            if time.monotonic() > next_resend:
                self._resend_unacked(force=True)
                next_resend = time.monotonic() + 5
            await asyncio.sleep(0.05)
        await self.sync()
        if self._failures:
            raise AssertionError(f"{self.name}: a task of the client failed") from self._failures[0]

    async def close(self) -> None:
        self._stopped = True
        if self._moving is not None:
            self._moving.cancel()
        if self._resend is not None:
            self._resend.cancel()
        for connection in list(self._open):
            await connection.close()
        for task in list(self._tasks):
            task.cancel()


async def new_client(env: Environment, http: HttpClient, name: str, url: str | None = None) -> ResilientClient:
    login = await http.signup(unique_email(name))
    client = ResilientClient(env, login, name)
    await client.connect(url)
    return client


async def verify(clients: Iterable[ResilientClient], env: Environment, *,
                 events_first: Mapping[int, int] | None = None) -> None:
    """Every message sent was stored exactly once and is in each recipient's inbox exactly once;
    every inbox is gapless; each client saw (live or by sync) everything in its inbox.

    `events_first`: how many events (a group's `joined`) each user's inbox holds before its first
    message. While GET /api/v1/messages answers messages only, those events take the first seqs
    unseen; once it answers every kind (ARCHITECTURE.md 4.1), the whole inbox is checked from 1."""
    clients = list(clients)
    http = HttpClient((await env.gateways())[0])
    by_user = {c.user_id: c for c in clients}
    inboxes: dict[int, list[dict[str, Any]]] = {}
    for client in clients:
        entries = await http.history(client.login.token)
        inbox = [m for m in entries if m.get("type", "msg") == "msg"]
        first = 1 if len(inbox) < len(entries) else 1 + (events_first or {}).get(client.user_id, 0)
        seqs = [m["seq"] for m in entries]
        assert seqs == list(range(first, first + len(entries))), f"{client.name}: inbox seqs not gapless: {seqs}"
        keys = [(m["from"], m["cid"]) for m in inbox]
        duplicates = {k for k in keys if keys.count(k) > 1}
        assert not duplicates, f"{client.name}: stored more than once: {sorted(duplicates)[:10]}"
        inboxes[client.user_id] = inbox
        missing = {m["id"] for m in inbox} - client.seen_ids
        assert not missing, f"{client.name}: {len(missing)} inbox messages never reached the client"
    for client in clients:
        assert not client.unacked, f"{client.name}: unacked {sorted(client.unacked)}"
        own = {(m["from"], m["cid"]): m for m in inboxes[client.user_id]}
        for message in client.sent:
            stored = own.get((client.user_id, message.cid))
            assert stored is not None, f"{client.name}: {message.cid} is not in the sender's inbox"
            assert stored["content"] == message.content
            assert client.acked[message.cid][0] == stored["id"], f"{client.name}: ack id of {message.cid}"
            if message.to is not None and message.to in by_user and message.to != client.user_id:
                theirs = [m for m in inboxes[message.to] if (m["from"], m["cid"]) == (client.user_id, message.cid)]
                assert len(theirs) == 1, f"{message.cid} reached user {message.to} {len(theirs)} times"
            if message.group is not None:
                for user_id, inbox in inboxes.items():
                    if user_id == client.user_id:
                        continue
                    theirs = [m for m in inbox if (m["from"], m["cid"]) == (client.user_id, message.cid)]
                    assert len(theirs) == 1, f"group {message.cid} reached user {user_id} {len(theirs)} times"


async def _close_all(clients: Iterable[ResilientClient]) -> None:
    for client in clients:
        await client.close()


async def _chatter(client: ResilientClient, peers: list[int], count: int, interval: float, tag: str,
                   group: int | None = None, until: asyncio.Future[None] | None = None) -> None:
    """`count` sends `interval` apart, and on past `count` until `until` is done."""
    for i in itertools.count():
        if i >= count and (until is None or until.done()):
            return
        cid = f"{tag}-{client.name}-{i}"
        if group is not None:
            await client.send(cid, f"{client.name} to the group #{i}", group=group)
        else:
            await client.send(cid, f"{client.name} #{i}", to=peers[i % len(peers)])
        await asyncio.sleep(interval)


# -- the scenarios -----------------------------------------------------------------------------


async def accounts_and_private_chat(env: Environment) -> None:
    """Register and log in (409 on a taken email, 401 on a bad password), then chat privately both
    ways across two gateways (or one, if that is all there is)."""
    urls = await env.gateways()
    http = HttpClient(urls[0])
    email = unique_email("ann")
    user_id = await http.register(email, "correct horse", "Ann")
    try:
        await http.register(email, "another password", "Ann again")
        raise AssertionError("registering a taken email must fail")
    except HttpError as error:
        assert error.status == 409, error
    try:
        await http.login(email, "wrong password")
        raise AssertionError("a wrong password must not log in")
    except HttpError as error:
        assert error.status == 401, error
    ann_login = await http.login(email, "correct horse")
    assert ann_login.user_id == user_id and ann_login.token

    ann = ResilientClient(env, ann_login, "ann")
    await ann.connect(urls[0])
    bob = await new_client(env, HttpClient(urls[-1]), "bob", urls[-1])
    try:
        for i in range(10):
            await ann.send(f"ann-{i}", f"hello bob #{i}", to=bob.user_id)
            await bob.send(f"bob-{i}", f"hello ann #{i}", to=ann.user_id)
        await ann.settle()
        await bob.settle()

        async def everything_arrived() -> bool:
            return len(ann.seen_ids) == 20 and len(bob.seen_ids) == 20

        await eventually(everything_arrived, 20, "both inboxes hold 20 messages")
        from_ann = [m["content"] for m in sorted(bob.received.values(), key=lambda m: m["seq"])
                    if m["from"] == ann.user_id]
        assert from_ann == [f"hello bob #{i}" for i in range(10)], "one conversation keeps its order"
        await verify([ann, bob], env)
    finally:
        await _close_all([ann, bob])


async def group_chat(env: Environment, members: int = 6) -> None:
    """A group whose members are spread over every gateway: each message reaches every member once."""
    urls = await env.gateways()
    http = HttpClient(urls[0])
    clients = [await new_client(env, http, f"m{i}", urls[i % len(urls)]) for i in range(members)]
    try:
        owner = clients[0]
        group = await http.create_group(owner.login.token, "e2e group")
        for member in clients[1:]:
            await http.add_member(owner.login.token, group, member.user_id)
        assert sorted(await http.members(owner.login.token, group)) == sorted(c.user_id for c in clients)
        try:
            await http.add_member(clients[1].login.token, group, clients[2].user_id)
            raise AssertionError("only the owner adds members")
        except HttpError as error:
            assert error.status == 403, error
        await asyncio.gather(*(_chatter(c, [], 5, 0.02, "grp", group=group) for c in clients[:3]))
        for client in clients:
            await client.settle()

        async def fanned_out() -> bool:
            return all(len(c.seen_ids) == 15 for c in clients)

        await eventually(fanned_out, 20, "every member has all 15 group messages")
        # Member i (the owner is 0) was told of its own join and of every one after it.
        joins = {c.user_id: len(clients) - max(i, 1) for i, c in enumerate(clients)}
        await verify(clients, env, events_first=joins)
    finally:
        await _close_all(clients)


async def connections_spread_after_scaling(env: Environment, replicas: int = 3, clients_count: int = 24,
                                           entry: str | None = None) -> None:
    """Scale the gateways up: new connections land on every gateway, including the new ones, and users
    on different gateways still reach each other.

    `entry`: a load-balanced URL (a Service) to connect through; without one the clients take the
    gateways in turn, as a round-robin balancer would.
    """
    await env.scale_gateways(replicas)
    urls = await env.gateways()
    assert len(urls) == replicas, urls
    http = HttpClient(entry or urls[0])
    before = {url: gateway_connections(url) for url in urls}
    clients = []
    try:
        for i in range(clients_count):
            target = entry or urls[i % len(urls)]
            clients.append(await new_client(env, http, f"s{i}", target))

        async def spread() -> bool:
            return all(gateway_connections(url) > before[url] for url in urls)

        await eventually(spread, 20, f"every one of {len(urls)} gateways took new connections "
                         f"({ {u: gateway_connections(u) for u in urls} })")
        # Neighbours chat: most pairs span two gateways.
        for i, client in enumerate(clients):
            await client.send(f"spread-{i}", f"hi from {i}", to=clients[(i + 1) % len(clients)].user_id)
        for client in clients:
            await client.settle()

        async def delivered() -> bool:
            return all(len(c.seen_ids) == 2 for c in clients)

        await eventually(delivered, 20, "each client got its neighbour's message")
        await verify(clients, env)
    finally:
        await _close_all(clients)


async def gateway_dies_mid_conversation(env: Environment, messages: int = 40) -> None:
    """Kill a gateway while its users are sending: they reconnect to a surviving gateway, resend what
    was not acked with the same cid, sync, and nothing is lost or stored twice."""
    urls = await env.gateways()
    assert len(urls) >= 2, "needs two gateways"
    doomed, survivor = urls[0], urls[1]
    http = HttpClient(survivor)
    alice = await new_client(env, http, "alice", doomed)
    carol = await new_client(env, http, "carol", doomed)
    bob = await new_client(env, http, "bob", survivor)
    clients = [alice, bob, carol]
    try:
        talk = asyncio.gather(
            _chatter(alice, [bob.user_id, carol.user_id], messages, 0.03, "die"),
            _chatter(carol, [alice.user_id, bob.user_id], messages, 0.03, "die"),
            _chatter(bob, [alice.user_id, carol.user_id], messages, 0.03, "die"),
        )
        await asyncio.sleep(messages * 0.03 / 3)
        await env.kill_gateway(doomed)
        await talk
        for client in clients:
            await client.settle()
        for client in (alice, carol):
            assert len(client.gateways_used) >= 2 and client.url != doomed, (
                f"{client.name} should have moved off {doomed}: {client.gateways_used}")
        await verify(clients, env)
    finally:
        await _close_all(clients)


async def rolling_update_without_loss(env: Environment, users: int = 6, messages: int = 60) -> None:
    """Roll out a configuration change to the gateways while users chat: drained clients get
    `reconnect` frames, move to other gateways, and no message is dropped or duplicated."""
    urls = await env.gateways()
    http = HttpClient(urls[0])
    clients = [await new_client(env, http, f"r{i}", urls[i % len(urls)]) for i in range(users)]
    ids = [c.user_id for c in clients]
    try:
        update = asyncio.ensure_future(env.rolling_update())
        await asyncio.gather(*(
            _chatter(c, [u for u in ids if u != c.user_id], messages, 0.05, "roll", until=update) for c in clients))
        await update
        for client in clients:
            await client.settle(timeout=120)
        assert any(c.reconnect_frames for c in clients), "a drained gateway sends reconnect frames"
        stuck = [(c.name, c.gateways_used) for c in clients if c.url in urls]
        assert not stuck, f"every client ends on a new gateway: {stuck}"
        await verify(clients, env)
    finally:
        await _close_all(clients)


SCENARIOS = (
    accounts_and_private_chat, group_chat, connections_spread_after_scaling,
    gateway_dies_mid_conversation, rolling_update_without_loss,
)
