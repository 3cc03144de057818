"""Logic commits the next batch while the previous one's downlinks go out: deliveries keep commit
order, and a sender's ack never waits behind an earlier batch's downlink."""

import asyncio
import time

from im.backends.bus.memory import MemoryBus
from im.backends.sessions.memory import MemorySessions
from im.backends.store.sqlite import SqliteStore
from im.contracts.envelopes import Downlink, Uplink
from im.logic.service import Logic, LogicSettings
from im.protocol.tokens import TokenCodec


class SlowFirstDeliveryBus(MemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.first_delivery_started = asyncio.Event()
        self.release_first = asyncio.Event()
        self.delivered: list[tuple[list[str], list[str]]] = []
        """Per downlink sent: the acks' cids, the deliveries' cids."""

    async def deliver(self, downlink: Downlink) -> None:
        if not self.first_delivery_started.is_set():
            self.first_delivery_started.set()
            await self.release_first.wait()
        self.delivered.append(([ack.cid for ack in downlink.acks], [d.event.cid for d in downlink.deliveries]))


def uplink(sender: int, to: int, cid: str) -> Uplink:
    return Uplink(sender, cid, to, None, f"message {cid}", "g1", 7, time.time())


async def test_the_next_batch_commits_while_downlinks_are_sent_and_deliveries_keep_commit_order(
    store: SqliteStore,
) -> None:
    alice = await store.create_user("a@example.test", "x", "a")
    bob = await store.create_user("b@example.test", "x", "b")
    bus, sessions = SlowFirstDeliveryBus(), MemorySessions()
    await sessions.bind(bob.id, "g1")
    logic = Logic(store, bus, sessions, TokenCodec("k" * 32),
                  LogicSettings(batch_max_size=1, batch_max_delay_ms=0))
    await logic.start()
    await bus.publish([uplink(alice.id, bob.id, "first")])
    await asyncio.wait_for(bus.first_delivery_started.wait(), 5)
    await bus.publish([uplink(alice.id, bob.id, "second")])

    async def second_committed() -> None:
        while len((await store.inbox(bob.id, 0, 10)).entries) < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(second_committed(), 5)
    await asyncio.sleep(0.05)
    assert bus.delivered == [(["second"], [])], "the second sender hears at once; its delivery waits"
    bus.release_first.set()
    await asyncio.wait_for(logic.close(), 5)
    assert bus.delivered == [(["second"], []), (["first"], ["first"]), ([], ["second"])]
    await bus.close()
