"""A chat client that follows the client rule (docs/protocol.md): keep every message until its `ack`,
and send it again with the same `cid` after reconnecting or when no ack came for a while; keep the
highest `seq` seen and `sync` from it after reconnecting.

It records everything it sees, so a test can check "every acked message is stored once and reaches
its recipients once" from the outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from im.client import ChatConnection, HttpClient, Login

__all__ = ["Outgoing", "ResendingClient", "check_conversation"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    cid: str
    content: str
    to: int | None = None
    group: int | None = None


@dataclass
class ResendingClient:
    login: Login
    ws_urls: list[str]
    """Gateways to try, in order, when (re)connecting."""
    resend_after: float = 2.0
    """Seconds without any ack before every unacked message is sent again."""
    connection: ChatConnection | None = None
    unacked: dict[str, Outgoing] = field(default_factory=dict)
    acks: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    """Every ack's seq, by cid: a redelivered or resent message is acked again with its first seq."""
    pushed: list[dict[str, Any]] = field(default_factory=list)
    """`msg` frames pushed to this client, in arrival order (not those returned by `sync`)."""
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Everything in my inbox this client has seen, by seq (pushed or synced)."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    connects: int = 0
    resends: int = 0
    _last_ack: float = field(default_factory=time.monotonic)
    _dropped: bool = False

    @property
    def user_id(self) -> int:
        return self.login.user_id

    @property
    def last_seq(self) -> int:
        return int(max(self.messages, default=0))

    @property
    def gapless_seq(self) -> int:
        """The highest seq up to which this client holds every message: `sync` asks after it, so a
        gap (a push missed while a dependency was down) is filled, as the client rule says."""
        seq = 0
        while seq + 1 in self.messages:
            seq += 1
        return seq

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self._dropped

    # -- connection -----------------------------------------------------------------------------

    async def connect(self, timeout: float = 30.0) -> None:
        """Connect to the first gateway that accepts, resend what is unacked, then sync."""
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            url = self.ws_urls[attempt % len(self.ws_urls)]
            attempt += 1
            try:
                self.connection = await asyncio.wait_for(
                    ChatConnection.open(url, self.login.token, open_timeout=3), 5)
                break
            except (TimeoutError, OSError, InvalidHandshake):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self._dropped = False
        self.connects += 1
        await self._resend()
        await self.sync()

    async def reconnect(self, timeout: float = 30.0) -> None:
        await self.disconnect()
        await self.connect(timeout)

    async def disconnect(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.close(), 5)
            self.connection = None

    # -- sending --------------------------------------------------------------------------------

    async def send(self, cid: str, content: str, *, to: int | None = None, group: int | None = None) -> None:
        message = Outgoing(cid, content, to, group)
        self.unacked[cid] = message
        await self._send(message)

    async def _send(self, message: Outgoing) -> None:
        if not self.connected:
            return  # sent again after the reconnect
        assert self.connection is not None
        try:
            await self.connection.send(message.cid, message.content, to=message.to, group=message.group)
        except ConnectionClosed:
            self._dropped = True

    async def _resend(self) -> None:
        for message in list(self.unacked.values()):
            self.resends += 1
            await self._send(message)
        self._last_ack = time.monotonic()

    async def settle(self, timeout: float = 30.0) -> None:
        """Until every message is acked: read frames, reconnect when the connection drops, resend."""
        deadline = time.monotonic() + timeout
        while self.unacked:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.unacked)} messages never acked, e.g. "
                                     f"{list(self.unacked)[:5]}; errors {self.errors[-5:]}")
            await self.pump(0.2)

    async def pump(self, wait: float) -> None:
        """Handle the frames that arrive within `wait` seconds; reconnect or resend as the rule says."""
        if not self.connected:
            try:
                await self.reconnect(max(5.0, wait))
            except (TimeoutError, OSError, InvalidHandshake, ConnectionError):
                self._dropped = True  # nobody accepts yet: try again on the next pump
            return
        assert self.connection is not None
        try:
            frame = await asyncio.wait_for(self.connection.frames.get(), wait)
        except TimeoutError:
            frame = None
        while frame is not None:
            self._handle(frame)
            frame = self.connection.frames.get_nowait() if not self.connection.frames.empty() else None
        if self.unacked and time.monotonic() - self._last_ack > self.resend_after:
            await self._resend()

    def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "ack":
            self.acks[frame["cid"]].append(frame["seq"])
            self.unacked.pop(frame["cid"], None)
            self._last_ack = time.monotonic()
        elif kind == "msg":
            self.pushed.append(frame)
            self.messages[frame["seq"]] = frame
        elif kind == "error":
            self.errors.append(frame)  # kept unacked: resent by the rule
        elif kind == "sync":
            for message in frame["messages"]:
                self.messages[message["seq"]] = message
        elif kind == "_closed":
            self._dropped = True  # the next pump reconnects
        # "reconnect" (a draining gateway) is followed by a close; "pong" needs nothing

    # -- catching up ----------------------------------------------------------------------------

    async def sync(self, timeout: float = 15.0) -> None:
        """Fetch my inbox after the last seq without a gap before it, following `more`; other frames
        are handled too."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.connection is not None
            await self.connection.send_frame({"type": "sync", "after": self.gapless_seq, "limit": 200})
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("sync did not answer in time")
                frame = await asyncio.wait_for(self.connection.frames.get(), remaining)
                if frame["type"] == "_closed":
                    self._dropped = True
                    raise ConnectionError(f"closed during sync: {frame}")
                if frame["type"] == "error" and frame.get("cid") is None:
                    raise AssertionError(f"sync failed: {frame}")
                self._handle(frame)
                if frame["type"] == "sync":
                    break
            if not frame["more"]:
                return


async def check_conversation(
    http: HttpClient, sender: ResendingClient, recipient: ResendingClient, cids: list[str],
) -> list[dict[str, Any]]:
    """Every message of `cids` was acked, is stored once in both inboxes with the acked seq, and reached
    the recipient once (pushed at most once, and seen after `sync`). Returns the recipient's copies in
    seq order."""
    assert not sender.unacked, f"unacked: {list(sender.unacked)[:10]}"
    for cid in cids:
        seqs = sender.acks.get(cid)
        assert seqs, f"{cid} never acked"
        assert len(set(seqs)) == 1, f"{cid} acked with different seqs {seqs}"
    mine = [m for m in await http.history(sender.login.token) if m["cid"] in set(cids)
            and m["from"] == sender.user_id]
    counts = Counter(m["cid"] for m in mine)
    assert sorted(counts) == sorted(cids), f"stored for the sender: missing {set(cids) - set(counts)}"
    assert max(counts.values()) == 1, f"stored twice: {[c for c, n in counts.items() if n > 1]}"
    for message in mine:
        assert sender.acks[message["cid"]][0] == message["seq"], f"ack seq differs from stored seq: {message}"

    theirs = [m for m in await http.history(recipient.login.token) if m["from"] == sender.user_id
              and m["cid"] in set(cids)]
    counts = Counter(m["cid"] for m in theirs)
    assert sorted(counts) == sorted(cids), f"stored for the recipient: missing {set(cids) - set(counts)}"
    assert max(counts.values()) == 1, f"stored twice: {[c for c, n in counts.items() if n > 1]}"
    seqs = [m["seq"] for m in await http.history(recipient.login.token)]
    assert seqs == list(range(1, len(seqs) + 1)), "the recipient's inbox is gapless"

    pushed = Counter((m["from"], m["cid"]) for m in recipient.pushed)
    assert max(pushed.values(), default=1) == 1, \
        f"pushed twice: {[k for k, n in pushed.items() if n > 1][:10]}"
    await recipient.sync()
    seen = {m["seq"] for m in recipient.messages.values()}
    missing = [m["cid"] for m in theirs if m["seq"] not in seen]
    assert not missing, f"never reached the recipient, even after sync: {missing[:10]}"
    for message in theirs:
        assert recipient.messages[message["seq"]]["cid"] == message["cid"], message
    return sorted(theirs, key=lambda m: m["seq"])
