"""Collects items from many callers and writes them in batches, flushed on size or delay.

`submit()` returns only once the batch holding the items is written, with their results, so a
caller can acknowledge upstream after the commit. A failed write keeps the batch and retries it
with backoff: nothing submitted is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BatchWriter", "BatchWriterClosed"]

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class BatchWriterClosed(Exception):
    pass


@dataclass(slots=True)
class _Submission(Generic[T, R]):
    items: list[T]
    done: asyncio.Future[list[R]]


class BatchWriter(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_size: int = 500,
        max_delay_seconds: float = 0.005,
        retry_initial_seconds: float = 0.05,
        retry_max_seconds: float = 5.0,
        on_write_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._write = write
        self.max_size = max_size
        self.max_delay_seconds = max_delay_seconds
        self._retry_initial = retry_initial_seconds
        self._retry_max = retry_max_seconds
        self._on_write_error = on_write_error
        self._pending: deque[_Submission[T, R]] = deque()
        self._pending_items = 0
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pending(self) -> int:
        """Items submitted and not yet written."""
        return self._pending_items

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batch-writer")

    async def submit(self, items: list[T]) -> list[R]:
        if self._closing:
            raise BatchWriterClosed("the batch writer is closing")
        done: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Submission(items, done))
        self._pending_items += len(items)
        self._wakeup.set()
        if self._pending_items >= self.max_size:
            self._full.set()
        return await done

    async def close(self) -> None:
        """Write everything already submitted, then stop."""
        self._closing = True
        self._wakeup.set()
        self._full.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._pending_items < self.max_size and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_delay_seconds)
            await self._write_next_batch()

    def _take_batch(self) -> list[_Submission[T, R]]:
        batch: list[_Submission[T, R]] = []
        size = 0
        while self._pending and (not batch or size + len(self._pending[0].items) <= self.max_size):
            submission = self._pending.popleft()
            batch.append(submission)
            size += len(submission.items)
        self._pending_items -= size
        if self._pending_items < self.max_size:
            self._full.clear()
        return batch

    async def _write_next_batch(self) -> None:
        batch = self._take_batch()
        items = [item for submission in batch for item in submission.items]
        delay = self._retry_initial
        while True:
            try:
                results = await self._write(items)
                break
            except Exception as exc:  # noqa: BLE001 - any failure keeps the batch for a retry
                log.warning("batch write of %d items failed, retrying in %.2fs: %r", len(items), delay, exc)
                if self._on_write_error is not None:
                    self._on_write_error(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
        start = 0
        for submission in batch:
            end = start + len(submission.items)
            if not submission.done.done():
                submission.done.set_result(results[start:end])
            start = end


