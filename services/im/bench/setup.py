"""Everything before the clock starts: users, logins and groups over the HTTP API, and server metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from im.bench.http import HttpError, request

__all__ = [
    "PASSWORD",
    "BenchUser",
    "SetupError",
    "ServerSample",
    "add_members",
    "create_group",
    "create_users",
    "parse_metrics",
    "sample_servers",
]

PASSWORD = "bench-password-1234"
RETRIES = 4
"""Attempts for one HTTP call that failed with 5xx, 429 or a network error."""


class SetupError(Exception):
    """Setup could not complete: the run would measure nothing meaningful."""


@dataclass(frozen=True, slots=True)
class BenchUser:
    index: int
    user_id: Any
    token: str


async def _call(base_url: str, method: str, path: str, body: Any = None, token: str | None = None,
                ok: Sequence[int] = (200, 201)) -> tuple[int, Any]:
    delay = 0.1
    for attempt in range(RETRIES):
        try:
            response = await request(base_url, method, path, body, token)
        except HttpError:
            if attempt == RETRIES - 1:
                raise
        else:
            if response.status in ok:
                return response.status, response.json()
            if response.status < 500 and response.status != 429:
                raise SetupError(f"{method} {path} -> {response.status}: {response.body[:300]!r}")
            if attempt == RETRIES - 1:
                raise SetupError(f"{method} {path} -> {response.status}: {response.body[:300]!r}")
        await asyncio.sleep(delay)
        delay *= 3
    raise AssertionError("unreachable")


async def _user(base_url: str, prefix: str, index: int) -> BenchUser:
    email = f"{prefix}-{index}@bench.example.com"
    status, body = await _call(base_url, "POST", "/api/v1/register",
                               {"email": email, "password": PASSWORD, "nickname": f"bench {index}"},
                               ok=(200, 201, 409))
    _, login = await _call(base_url, "POST", "/api/v1/login", {"email": email, "password": PASSWORD})
    if status != 409 and body and body.get("user_id") != login["user_id"]:
        raise SetupError(f"register said user {body.get('user_id')}, login said {login['user_id']}")
    return BenchUser(index, login["user_id"], login["token"])


async def create_users(base_urls: Sequence[str], count: int, prefix: str, concurrency: int,
                       on_progress: Callable[[int], None] | None = None) -> list[BenchUser]:
    """Register and log in `count` users, at most `concurrency` at once (the password KDF is slow)."""
    users: list[BenchUser | None] = [None] * count
    next_index = 0
    done = 0

    async def lane() -> None:
        nonlocal next_index, done
        while next_index < count:
            index = next_index
            next_index += 1
            users[index] = await _user(base_urls[index % len(base_urls)], prefix, index)
            done += 1
            if on_progress is not None:
                on_progress(done)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, min(concurrency, count))):
            group.create_task(lane())
    return [user for user in users if user is not None]


async def create_group(base_url: str, owner: BenchUser, name: str) -> Any:
    _, body = await _call(base_url, "POST", "/api/v1/groups", {"name": name}, owner.token)
    return body["group_id"]


async def add_members(base_url: str, owner: BenchUser, group_id: Any, members: Sequence[BenchUser],
                      concurrency: int) -> None:
    queue = list(members)

    async def lane() -> None:
        while queue:
            member = queue.pop()
            await _call(base_url, "POST", f"/api/v1/groups/{group_id}/members", {"user_id": member.user_id},
                        owner.token, ok=(200, 201, 204, 409))

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, min(concurrency, len(queue)))):
            group.create_task(lane())


def parse_metrics(text: str, names: Sequence[str]) -> dict[str, float]:
    """Sum the samples of each wanted metric (over all label sets) from Prometheus text exposition."""
    wanted = set(names)
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line[: line.index("{")], line[line.rindex("}") + 1 :]
        else:
            name, _, rest = line.partition(" ")
        if name in wanted:
            try:
                value = float(rest.split()[0])
            except (IndexError, ValueError):
                continue
            found[name] = found.get(name, 0.0) + value
    return found


SAMPLED = ("process_resident_memory_bytes", "process_cpu_seconds_total", "im_messages_persisted_total",
           "im_messages_delivered_total", "im_messages_received_total", "im_gateway_connections",
           "im_errors_total")


@dataclass(frozen=True, slots=True)
class ServerSample:
    """Metrics of every server at one moment; a server that could not be read maps to an error text."""

    at: float
    values: dict[str, dict[str, float]]
    errors: dict[str, str]

    def total(self, name: str) -> float | None:
        present = [metrics[name] for metrics in self.values.values() if name in metrics]
        return sum(present) if present else None


async def sample_servers(metrics_urls: Sequence[str]) -> ServerSample:
    async def one(url: str) -> tuple[str, dict[str, float] | str]:
        base, _, path = url.partition("/metrics")
        try:
            response = await request(base, "GET", "/metrics" + path, timeout=10)
        except HttpError as exc:
            return url, str(exc)
        if response.status != 200:
            return url, f"HTTP {response.status}"
        return url, parse_metrics(response.body.decode("utf-8", "replace"), SAMPLED)

    results = await asyncio.gather(*(one(url) for url in metrics_urls))
    values = {url: r for url, r in results if isinstance(r, dict)}
    errors = {url: r for url, r in results if isinstance(r, str)}
    return ServerSample(time.time(), values, errors)
