"""The three interfaces gateway and logic are written against.

`Store` keeps users, groups and messages; `Bus` carries uplinks to logic and downlinks to gateways;
`Sessions` knows which gateways each user is connected to. Standalone mode uses SQLite and in-memory
implementations, distributed mode MySQL, RabbitMQ and Redis; callers never know which they have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from im.contracts.envelopes import Downlink, Uplink
from im.contracts.records import Group, InboxPage, Message, User

__all__ = ["Bus", "DownlinkHandler", "NewMessage", "Persisted", "Sessions", "Store", "UplinkHandler",
           "UserCredentials"]


@dataclass(frozen=True, slots=True)
class UserCredentials:
    user: User
    password_hash: str


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message ready to store: `recipients` are every user whose inbox gets it (sender included)."""

    sender: int
    cid: str
    to: int | None
    group: int | None
    content: str
    ts: int
    recipients: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Persisted:
    """The outcome for one `NewMessage`: the stored message and each recipient's inbox `seq`.

    A duplicate `(sender, cid)` is not stored again: `duplicate` is set, `message` is the original and
    `seqs` holds only the sender's original seq.
    """

    message: Message
    seqs: dict[int, int]
    duplicate: bool = False


class Store(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema to the latest migration."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the store cannot answer now."""

    async def create_user(self, email: str, password_hash: str, nickname: str) -> User:
        """Raise `Conflict` if the email is taken."""

    async def credentials(self, email: str) -> UserCredentials | None: ...

    async def existing_users(self, user_ids: Iterable[int]) -> set[int]: ...

    async def create_group(self, name: str, owner: int) -> Group:
        """The owner becomes the first member."""

    async def group(self, group_id: int) -> Group | None: ...

    async def add_member(self, group_id: int, user_id: int) -> bool:
        """False if the user already was a member."""

    async def members(self, group_ids: Iterable[int]) -> dict[int, list[int]]:
        """Members of each existing group; groups that do not exist are absent."""

    async def groups_of(self, user_id: int) -> list[Group]: ...

    async def persist(self, batch: Sequence[NewMessage]) -> list[Persisted]:
        """Store a batch in one transaction, assigning inbox seqs; one result per input, in order."""

    async def inbox(self, user_id: int, after: int, limit: int) -> InboxPage: ...


UplinkHandler = Callable[[list[Uplink]], Awaitable[None]]
DownlinkHandler = Callable[[Downlink], Awaitable[None]]


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the bus cannot carry messages now."""

    async def publish(self, uplinks: list[Uplink]) -> None:
        """Gateway side: returns once the bus holds the uplinks (publisher confirm where there is one)."""

    async def consume(self, handler: UplinkHandler) -> None:
        """Logic side: call `handler` with uplinks; they count as consumed only once it returns.

        A handler that raises leaves them to be delivered again. Uplinks of one conversation reach
        handlers in publish order.
        """

    async def deliver(self, downlink: Downlink) -> None:
        """Logic side: send a downlink to its gateway (dropped if that gateway is gone)."""

    async def subscribe(self, gateway: str, handler: DownlinkHandler) -> None:
        """Gateway side: receive the downlinks addressed to `gateway`."""


class Sessions(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def bind(self, user_id: int, gateway: str) -> None: ...

    async def unbind(self, user_id: int, gateway: str) -> None: ...

    async def refresh(self, user_ids: Iterable[int], gateway: str) -> None:
        """Extend the TTL of these users' entries for `gateway` (called periodically by the gateway)."""

    async def locate(self, user_ids: Iterable[int]) -> dict[int, set[str]]:
        """The gateways of each online user, in one round trip; offline users are absent."""
