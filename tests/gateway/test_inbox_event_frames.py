"""The gateway turns edit, recall and read frames into uplinks of their kind, stamped with the
authenticated sender; while the bus writes envelopes older than version 3 it refuses them instead."""

from __future__ import annotations

import asyncio
import time

import orjson
from websockets.asyncio.client import connect

from im.backends.sessions.memory import MemorySessions
from im.gateway.server import Gateway, GatewaySettings
from im.protocol.tokens import TokenCodec
from tests.gateway.test_uplink_publishing import SECRET, RecordingBus

FRAMES = [
    {"type": "edit", "cid": "e1", "id": 41, "content": "edited"},
    {"type": "recall", "cid": "r1", "id": 41},
    {"type": "read", "peer": 9, "up_to": 41},
    {"type": "read", "group": 7, "up_to": 43, "cid": "read-1"},
]


async def gateway_with(inbox_events: bool) -> tuple[Gateway, RecordingBus, str]:
    bus, tokens = RecordingBus(), TokenCodec(SECRET)
    gateway = Gateway(api=None, tokens=tokens, bus=bus, sessions=MemorySessions(),  # type: ignore[arg-type]
                      settings=GatewaySettings(gateway_id="g1", serve_web=False, inbox_events=inbox_events))
    await gateway.start("127.0.0.1", 0)
    return gateway, bus, f"ws://127.0.0.1:{gateway.ports[0]}/ws?token={tokens.issue(5, int(time.time()))[0]}"


async def test_edit_recall_and_read_frames_become_uplinks_of_their_kind() -> None:
    gateway, bus, url = await gateway_with(inbox_events=True)
    async with connect(url) as client:
        for frame in FRAMES:
            await client.send(orjson.dumps(frame).decode())
        await asyncio.sleep(0.3)
    uplinks = [u for round_ in bus.rounds for u in round_]
    assert [(u.sender, u.kind, u.cid, u.to, u.group, u.message_id, u.content) for u in uplinks] == [
        (5, "edit", "e1", None, None, 41, "edited"),
        (5, "recall", "r1", None, None, 41, ""),
        (5, "read", "", 9, None, 41, ""),
        (5, "read", "read-1", None, 7, 43, ""),
    ]
    await gateway.close()


async def test_while_the_bus_carries_sends_only_the_other_kinds_are_refused_as_unavailable() -> None:
    gateway, bus, url = await gateway_with(inbox_events=False)
    async with connect(url) as client:
        for frame in FRAMES:
            await client.send(orjson.dumps(frame).decode())
        answers = [orjson.loads(await client.recv()) for _ in FRAMES]
    assert [(a["type"], a["code"], a["cid"]) for a in answers] == [
        ("error", "unavailable", "e1"), ("error", "unavailable", "r1"), ("error", "unavailable", None),
        ("error", "unavailable", "read-1")]
    assert bus.rounds == []
    await gateway.close()
