"""An in-memory bus that records the downlinks logic sends instead of delivering them."""

from __future__ import annotations

from im.backends.bus.memory import MemoryBus
from im.contracts.envelopes import Downlink


class RecordingBus(MemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.downlinks: list[Downlink] = []

    async def deliver(self, downlink: Downlink) -> None:
        self.downlinks.append(downlink)

    def acks(self) -> list[str]:
        """The cids acked so far, in order."""
        return [ack.cid for d in self.downlinks for ack in d.acks]

    def refusals(self) -> dict[str, tuple[str, str | None]]:
        """cid → (code, request id) of every rejection so far."""
        return {r.cid: (r.code, r.request_id) for d in self.downlinks for r in d.rejections}
