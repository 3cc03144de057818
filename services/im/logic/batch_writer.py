"""Collects items from many callers and writes them in batches, flushed on size or delay.

The delay is the longest an item waits for its batch to fill, from its submission: items that
arrived while the previous batch was being written go out as soon as that write ends if they are
that old already (group commit), so a busy writer adds its write time to latency, not the delay too.

`submit()` returns only once the batch holding the items is written, with their results, so a
caller can acknowledge upstream after the commit. A failed write is one of two things, so that one
bad item never holds up the others:

- an **outage** (`is_outage`: a temporary `ImError` such as `Unavailable`, a lost connection, a
  timeout): the batch is kept and written again with backoff, for as long as it takes. Nothing
  submitted is dropped; meanwhile `stalled_seconds` grows, so readiness and metrics can say so.
- anything else is **tied to an item** (a value the store cannot take, say): the batch is split in
  halves and each half written on its own, down to the one item that fails, whose result is
  `refuse(item, error)`; every other item is written. Halves are written in order, so items keep
  their submission order.

`close(timeout)` writes what was submitted and stops; past the timeout it stops anyway and the
unwritten submissions fail with `BatchWriterClosed`, whatever state the writer is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from im.protocol.errors import ImError

__all__ = ["BatchWriter", "BatchWriterClosed", "is_outage"]

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class BatchWriterClosed(Exception):
    pass


def is_outage(error: Exception) -> bool:
    """A failure of a dependency, not of the items: the same write may succeed later."""
    if isinstance(error, ImError):
        return error.temporary
    return isinstance(error, (ConnectionError, TimeoutError))


@dataclass(slots=True)
class _Submission(Generic[T, R]):
    items: list[T]
    done: asyncio.Future[list[R]]
    submitted_at: float


class BatchWriter(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[list[R]]],
        *,
        refuse: Callable[[T, Exception], R],
        max_size: int = 500,
        max_delay_seconds: float = 0.005,
        retry_initial_seconds: float = 0.05,
        retry_max_seconds: float = 5.0,
        on_write_error: Callable[[Exception], None] | None = None,
        is_outage: Callable[[Exception], bool] = is_outage,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`write(items)` returns one result per item, in order; `refuse(item, error)` is the result of
        an item that cannot be written. `on_write_error` sees every failed write (outage or not)."""
        self._write = write
        self._refuse = refuse
        self.max_size = max_size
        self.max_delay_seconds = max_delay_seconds
        self._retry_initial = retry_initial_seconds
        self._retry_max = retry_max_seconds
        self._on_write_error = on_write_error
        self._is_outage = is_outage
        self._clock = clock
        self._pending: deque[_Submission[T, R]] = deque()
        self._pending_items = 0
        self._writing: list[_Submission[T, R]] = []
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._stalled_since: float | None = None

    @property
    def pending(self) -> int:
        """Items submitted and not yet written."""
        return self._pending_items

    @property
    def stalled_seconds(self) -> float:
        """How long writes have been failing for an outage (0 while they succeed)."""
        since = self._stalled_since
        return 0.0 if since is None else max(0.0, self._clock() - since)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batch-writer")

    async def submit(self, items: list[T]) -> list[R]:
        if self._closing:
            raise BatchWriterClosed("the batch writer is closing")
        done: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Submission(items, done, self._clock()))
        self._pending_items += len(items)
        self._wakeup.set()
        if self._pending_items >= self.max_size:
            self._full.set()
        return await done

    async def close(self, timeout: float | None = None) -> None:
        """Write everything already submitted, then stop; after `timeout` seconds, stop regardless and
        fail what is unwritten with `BatchWriterClosed` (a write in progress is cancelled)."""
        self._closing = True
        self._wakeup.set()
        self._full.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        unwritten = [*self._writing, *self._pending]
        self._writing, self._pending, self._pending_items = [], deque(), 0
        for submission in unwritten:
            if not submission.done.done():
                submission.done.set_exception(BatchWriterClosed("stopped before these items were written"))
        if unwritten:
            log.warning("stopped with %d submissions unwritten after %.1fs", len(unwritten), timeout or 0)

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Group commit: what arrived during the last write has waited for it already.
            wait = self._pending[0].submitted_at + self.max_delay_seconds - self._clock()
            if wait > 0 and self._pending_items < self.max_size and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), wait)
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
        batch = self._writing = self._take_batch()
        results = await self._write_isolating([item for submission in batch for item in submission.items])
        self._writing = []
        start = 0
        for submission in batch:
            end = start + len(submission.items)
            if not submission.done.done():
                submission.done.set_result(results[start:end])
            start = end

    async def _write_isolating(self, items: list[T]) -> list[R]:
        try:
            return await self._write_through_outages(items)
        except Exception as exc:  # noqa: BLE001 - tied to an item: find it, refuse it, write the rest
            if len(items) == 1:
                return [self._refuse(items[0], exc)]
            middle = len(items) // 2
            log.info("a write of %d items failed (%r): writing its halves apart", len(items), exc)
            return await self._write_isolating(items[:middle]) + await self._write_isolating(items[middle:])

    async def _write_through_outages(self, items: list[T]) -> list[R]:
        delay = self._retry_initial
        while True:
            try:
                results = await self._write(items)
            except Exception as exc:
                if self._on_write_error is not None:
                    self._on_write_error(exc)
                if not self._is_outage(exc):
                    raise
                if self._stalled_since is None:
                    self._stalled_since = self._clock()
                log.warning("a write of %d items failed for an outage, retrying in %.2fs: %r",
                            len(items), delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            self._stalled_since = None
            return results
