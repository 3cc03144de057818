"""The in-process session map of standalone mode."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

__all__ = ["MemorySessions"]


class MemorySessions:
    def __init__(self) -> None:
        self._gateways: defaultdict[int, set[str]] = defaultdict(set)
        self._listeners: list[Callable[[list[int]], None]] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    def on_reset(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Never called: an in-process map cannot lose entries behind our back."""

    async def bind(self, user_id: int, gateway: str) -> None:
        self._gateways[user_id].add(gateway)

    async def unbind(self, user_id: int, gateway: str) -> None:
        gateways = self._gateways.get(user_id)
        if gateways is not None:
            gateways.discard(gateway)
            if not gateways:
                del self._gateways[user_id]

    async def refresh(self, user_ids: Iterable[int], gateway: str) -> None:
        pass

    async def locate(self, user_ids: Iterable[int]) -> dict[int, set[str]]:
        found = {}
        for user_id in user_ids:
            gateways = self._gateways.get(user_id)
            if gateways:
                found[user_id] = set(gateways)
        return found

    async def announce(self, user_ids: Iterable[int]) -> None:
        users = list(user_ids)
        for listener in self._listeners:
            listener(users)

    def on_announce(self, callback: Callable[[list[int]], None]) -> None:
        self._listeners.append(callback)
