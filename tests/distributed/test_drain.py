"""A gateway drains on SIGTERM: real logic and gateway processes over MySQL, Redis and RabbitMQ.

What a drain promises (Gateway.drain, docs/operations.md): readiness fails at once, no new connection
is accepted, every client gets one `reconnect` frame whose `after_ms` are spread over
IM_DRAIN_SECONDS (no reconnect storm on the other gateways), the sends already accepted are answered
before the connections close with 1001, sends that arrive during the drain are refused with
`unavailable` (left for the client to resend), and nothing is lost: the clients resend what was not
acked, with the same cid, on another gateway, and every message is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import signal
import socket
import time
import urllib.request
from typing import Any

import pytest

from im.client import HttpClient
from im.protocol.errors import CloseCode
from tests.support.cluster import GatewayProcess, LocalCluster
from tests.support.scenarios import ResilientClient, Sent, unique_email, verify

pytestmark = pytest.mark.integration

DRAIN_SECONDS = 3.0
BATCH_DELAY_MS = 1000
"""Logic holds a batch this long, so the burst sent just before SIGTERM is still in flight when it lands."""
CLIENTS = 16
BURST = 3


class TwoGateways:
    """The `Environment` of the scenarios: both gateways until one is signalled, then the survivor."""

    def __init__(self, draining: GatewayProcess, survivor: GatewayProcess) -> None:
        self.draining, self.survivor = draining, survivor
        self.signalled = False

    async def gateways(self) -> list[str]:
        return [self.survivor.url] if self.signalled else [self.draining.url, self.survivor.url]

    async def scale_gateways(self, replicas: int) -> None:
        raise NotImplementedError

    async def kill_gateway(self, url: str) -> None:
        raise NotImplementedError

    async def rolling_update(self) -> None:
        raise NotImplementedError


def readyz_status(port: int) -> int | str:
    """The status of GET /readyz on a new connection, or why there was none."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status
    except ConnectionRefusedError:
        return "refused"
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def messages_received(metrics_url: str) -> float:
    """`im_messages_received_total` of a gateway: sends it accepted and handed to the bus."""
    with urllib.request.urlopen(metrics_url, timeout=2) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("im_messages_received_total "):
                return float(line.split()[1])
    return 0.0


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


async def send_on_draining_connection(client: ResilientClient, cid: str, to: int) -> None:
    """Send on the connection that got the `reconnect` frame, as a client that ignores it would."""
    message = Sent(client.user_id, cid, "sent while the gateway drains", to=to)
    client.sent.append(message)
    client.unacked[cid] = message
    assert client.connection is not None
    with contextlib.suppress(Exception):  # already closed: the message simply stays unacked
        await client.connection.send_frame({"type": "send", "cid": cid, "to": to, "content": message.content})


async def test_sigterm_drains_the_gateway_without_losing_a_message(cluster: LocalCluster) -> None:
    cluster.start_logic(IM_BATCH_MAX_DELAY_MS=str(BATCH_DELAY_MS))
    draining = cluster.start_gateway(IM_DRAIN_SECONDS=str(DRAIN_SECONDS))
    survivor = cluster.start_gateway(IM_DRAIN_SECONDS=str(DRAIN_SECONDS))
    env = TwoGateways(draining, survivor)
    http_api = HttpClient(survivor.url)

    bob = ResilientClient(env, await http_api.signup(unique_email("bob")), "bob")
    await bob.connect(survivor.url)
    clients = []
    for i in range(CLIENTS):
        client = ResilientClient(env, await http_api.signup(unique_email(f"d{i}")), f"d{i}")
        await client.connect(draining.url)
        clients.append(client)
    for client in clients:
        await client.send(f"{client.name}-warm", "before the drain", to=bob.user_id)
    for client in [*clients, bob]:
        await client.settle()
    assert {c.acked_via[f"{c.name}-warm"] for c in clients} == {draining.url}

    # A burst logic will hold for BATCH_DELAY_MS: in flight when the signal lands.
    burst = {c.name: [f"{c.name}-burst{j}" for j in range(BURST)] for c in clients}
    for client in clients:
        for cid in burst[client.name]:
            await client.send(cid, f"burst {cid}", to=bob.user_id)
    # Accepted by the gateway (so they are the drain's to answer), not yet committed by logic.
    accepted = CLIENTS * (1 + BURST)
    deadline = time.monotonic() + 5
    while await asyncio.to_thread(messages_received, draining.metrics_url) < accepted:
        assert time.monotonic() < deadline, "the gateway did not take the burst"
        await asyncio.sleep(0.02)
    in_flight = sum(len(c.unacked) for c in clients)

    env.signalled = True
    signalled_at = time.monotonic()
    draining.send_signal(signal.SIGTERM)

    # Readiness fails as soon as the signal is handled, for good, and nothing new gets in. (A probe
    # that reaches the process before its loop has run the handler still gets 200: signals are
    # asynchronous, and on a loaded machine that first probe sometimes wins.)
    statuses: list[int | str] = []
    refused_after: float | None = None
    unready_after: float | None = None
    while time.monotonic() - signalled_at < 1.0:
        status = await asyncio.to_thread(readyz_status, draining.port)
        statuses.append(status)
        if unready_after is None and status != 200:
            unready_after = time.monotonic() - signalled_at
        if refused_after is None and not await asyncio.to_thread(accepts_connections, draining.port):
            refused_after = time.monotonic() - signalled_at
        await asyncio.sleep(0.02)
    assert unready_after is not None and unready_after < 0.5, f"/readyz still 200 after SIGTERM: {statuses}"
    first_unready = next(i for i, status in enumerate(statuses) if status != 200)
    assert 200 not in statuses[first_unready:], f"/readyz answered 200 again after failing: {statuses}"
    assert refused_after is not None and refused_after < 0.5, f"new connections still accepted: {refused_after}"

    # A client that ignores its `reconnect` frame and sends on: refused with `unavailable`, not dropped.
    late = clients[0]
    late_cid = f"{late.name}-late"

    async def got_reconnect() -> None:
        while not late.reconnect_frames:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(got_reconnect(), 2)
    await send_on_draining_connection(late, late_cid, bob.user_id)

    code = await asyncio.to_thread(draining.process.wait, DRAIN_SECONDS + 10)  # type: ignore[union-attr]
    drained_in = time.monotonic() - signalled_at
    assert code == 0, draining.log()
    assert drained_in < DRAIN_SECONDS + 6, f"the drain took {drained_in:.1f}s"

    for client in [*clients, bob]:
        await client.settle(timeout=30)

    # One reconnect frame each, spread over the window rather than all at once.
    after_ms = [c.reconnect_frames for c in clients]
    assert all(len(frames) == 1 for frames in after_ms), after_ms
    delays = sorted(frames[0] for frames in after_ms)
    assert all(0 <= d <= DRAIN_SECONDS * 1000 for d in delays), delays
    assert len(set(delays)) >= CLIENTS // 2, f"reconnect delays are not spread: {delays}"
    assert delays[-1] - delays[0] >= DRAIN_SECONDS * 1000 / 3, f"reconnect delays are bunched: {delays}"

    # The drain closed the connections with 1001 (a client whose `after_ms` came first left on its own,
    # 1000) and everyone moved to the survivor.
    for client in clients:
        assert client.closes[:1] in ([CloseCode.GOING_AWAY], [1000]), (client.name, client.closes)
        assert client.url == survivor.url, (client.name, client.gateways_used)
    assert any(c.closes[0] == CloseCode.GOING_AWAY for c in clients)

    # In flight at the signal, answered by the draining gateway before it closed: not lost, not resent.
    assert in_flight > 0, "the burst was acked before the signal: nothing was in flight"
    answered_elsewhere = {cid: c.acked_via.get(cid) for c in clients for cid in burst[c.name]
                          if c.acked_via.get(cid) != draining.url}
    assert not answered_elsewhere, f"in-flight sends not answered by the draining gateway: {answered_elsewhere}"

    # Sent during the drain: refused with `unavailable` (or cut by the close), then resent and stored once.
    late_errors: list[dict[str, Any]] = [e for e in late.errors if e.get("cid") == late_cid]
    assert all(e["code"] == "unavailable" for e in late_errors), late_errors
    assert late.acked_via.get(late_cid) == survivor.url, late.acked_via.get(late_cid)

    await verify([*clients, bob], env)
    bob_from = sorted(m["cid"] for m in bob.received.values())
    expected = sorted(cid for c in clients for cid in [f"{c.name}-warm", *burst[c.name]]) + [late_cid]
    assert bob_from == sorted(expected), "bob has every message exactly once"
    for client in [*clients, bob]:
        await client.close()


async def test_an_http_request_in_progress_when_the_drain_starts_gets_its_answer(cluster: LocalCluster) -> None:
    cluster.start_logic()
    gateway = cluster.start_gateway(IM_DRAIN_SECONDS=str(DRAIN_SECONDS))
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)

    def register_during_drain() -> int | str:
        body = f'{{"email": "{unique_email("h")}", "password": "correct horse", "nickname": "h"}}'
        conn.request("POST", "/api/v1/register", body=body, headers={"Content-Type": "application/json"})
        time.sleep(0.01)  # the request is with logic (scrypt takes tens of milliseconds) ...
        gateway.send_signal(signal.SIGTERM)  # ... when the drain starts
        try:
            return conn.getresponse().status
        except (ConnectionError, http.client.HTTPException) as exc:
            return type(exc).__name__

    status = await asyncio.to_thread(register_during_drain)
    conn.close()
    assert status == 201, f"a register in progress at SIGTERM got no answer: {status}"
