import asyncio
from typing import Any

import pytest

from im.logic.batch_writer import BatchWriter, BatchWriterClosed
from im.protocol.errors import BadRequest, Unavailable


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.failures = failures

    async def write(self, items: list[int]) -> list[int]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store down")
        self.batches.append(list(items))
        return [item * 10 for item in items]


def refused(item: int, error: Exception) -> int:
    return -item


def make_writer(write: Any, **settings: Any) -> BatchWriter[int, int]:
    return BatchWriter(write, refuse=refused, **settings)


async def test_a_full_batch_is_written_without_waiting_for_the_delay() -> None:
    recorder = Recorder()
    writer = make_writer(recorder.write, max_size=4, max_delay_seconds=60)
    writer.start()
    results = await asyncio.wait_for(asyncio.gather(*(writer.submit([i]) for i in range(4))), 5)
    assert results == [[0], [10], [20], [30]]
    assert recorder.batches == [[0, 1, 2, 3]]
    await writer.close()


async def test_a_partial_batch_is_written_after_the_delay() -> None:
    recorder = Recorder()
    writer = make_writer(recorder.write, max_size=100, max_delay_seconds=0.05)
    writer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await writer.submit([1, 2]) == [10, 20]
    assert loop.time() - started >= 0.04
    assert recorder.batches == [[1, 2]]
    await writer.close()


async def test_items_that_waited_out_the_delay_during_a_write_are_written_right_after_it() -> None:
    """The delay is the longest an item waits for its batch to fill, counted from its submission:
    items that arrived during a write and are older than the delay when it ends do not wait again."""
    now = [0.0]
    release = asyncio.Event()
    written: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        written.append(list(items))
        if len(written) == 1:
            await release.wait()
        return items

    writer = make_writer(write, max_size=2, max_delay_seconds=60, clock=lambda: now[0])
    writer.start()
    first = asyncio.ensure_future(writer.submit([1, 2]))  # full: written at once, and held
    while not written:
        await asyncio.sleep(0)
    second = asyncio.ensure_future(writer.submit([3]))
    await asyncio.sleep(0)
    now[0] = 61.0  # the write took longer than the delay
    release.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), 5) == [[1, 2], [3]]
    await writer.close()


async def test_batches_keep_submission_order_and_never_exceed_the_size() -> None:
    recorder = Recorder()
    writer = make_writer(recorder.write, max_size=5, max_delay_seconds=0.01)
    writer.start()
    await asyncio.gather(*(writer.submit([2 * i, 2 * i + 1]) for i in range(20)))
    flat = [item for batch in recorder.batches for item in batch]
    assert flat == list(range(40))
    assert all(len(batch) <= 5 for batch in recorder.batches)
    await writer.close()


async def test_a_failed_write_keeps_the_batch_and_retries_it() -> None:
    recorder = Recorder(failures=3)
    errors: list[Exception] = []
    writer = make_writer(
        recorder.write, max_size=10, max_delay_seconds=0.001, retry_initial_seconds=0.01,
        on_write_error=errors.append,
    )
    writer.start()
    assert await asyncio.wait_for(writer.submit([1, 2, 3]), 5) == [10, 20, 30]
    assert recorder.batches == [[1, 2, 3]]
    assert len(errors) == 3
    await writer.close()


async def test_close_writes_what_was_submitted_then_refuses_more() -> None:
    recorder = Recorder()
    writer = make_writer(recorder.write, max_size=100, max_delay_seconds=60)
    writer.start()
    pending = asyncio.ensure_future(writer.submit([7]))
    await asyncio.sleep(0)
    await asyncio.wait_for(writer.close(), 5)
    assert await pending == [70]
    with pytest.raises(BatchWriterClosed):
        await writer.submit([8])


class FailsFor:
    """A store that cannot take some chosen items: any batch holding one fails (a value error, not an
    outage), and any other batch is written."""

    def __init__(self, *bad: int) -> None:
        self.bad = set(bad)
        self.written: list[int] = []
        self.attempts = 0

    async def write(self, items: list[int]) -> list[int]:
        self.attempts += 1
        if self.bad & set(items):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        self.written.extend(items)
        return [item * 10 for item in items]


@pytest.mark.parametrize("bad", [(0,), (17,), (99,), (3, 4), (0, 50, 99)])
async def test_an_item_the_store_cannot_take_is_refused_and_every_other_item_is_written(bad: tuple[int, ...]) -> None:
    store = FailsFor(*bad)
    writer = make_writer(store.write, max_size=100, max_delay_seconds=0.001, retry_initial_seconds=0.01)
    writer.start()
    results = await asyncio.wait_for(asyncio.gather(*(writer.submit([i]) for i in range(100))), 5)
    assert [r for [r] in results] == [-i if i in bad else i * 10 for i in range(100)]
    assert store.written == [i for i in range(100) if i not in bad], "the rest keep their order"
    assert store.attempts <= 1 + 2 * len(bad) * 8, "found by halving, not by trying items one by one"
    assert writer.stalled_seconds == 0
    await writer.close()


async def test_a_refused_item_does_not_hold_up_later_batches() -> None:
    store = FailsFor(1)
    writer = make_writer(store.write, max_size=2, max_delay_seconds=0.001, retry_initial_seconds=0.01)
    writer.start()
    assert await asyncio.wait_for(writer.submit([1]), 5) == [-1]
    assert await asyncio.wait_for(writer.submit([2, 3]), 5) == [20, 30]
    await writer.close()


async def test_a_client_error_from_the_store_is_tied_to_its_item_too() -> None:
    async def write(items: list[int]) -> list[int]:
        if 5 in items:
            raise BadRequest("no such group")
        return items

    seen: list[Exception] = []
    writer = BatchWriter(write, refuse=lambda item, error: seen.append(error) or 0, max_delay_seconds=0.001)
    writer.start()
    assert await asyncio.wait_for(writer.submit([4, 5, 6]), 5) == [4, 0, 6]
    assert [type(e) for e in seen] == [BadRequest]
    await writer.close()


class Outage:
    """Down until `up` is set; every write meanwhile fails as a lost connection would."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.up = asyncio.Event()
        self.failures = 0

    async def write(self, items: list[int]) -> list[int]:
        if not self.up.is_set():
            self.failures += 1
            raise self.error
        return items


@pytest.mark.parametrize("error", [Unavailable("MySQL at db:3306 unavailable"), ConnectionResetError(),
                                   TimeoutError()], ids=["unavailable", "connection", "timeout"])
async def test_an_outage_is_waited_out_as_a_whole_batch_and_counted_as_stalled(error: Exception) -> None:
    now = [100.0]
    outage = Outage(error)
    writer = make_writer(outage.write, max_size=10, max_delay_seconds=0.001, retry_initial_seconds=0.01,
                         retry_max_seconds=0.02, clock=lambda: now[0])
    writer.start()
    pending = asyncio.ensure_future(writer.submit([1, 2, 3]))
    while outage.failures < 5:
        await asyncio.sleep(0.01)
    now[0] += 30
    assert writer.stalled_seconds == 30
    assert not pending.done()
    outage.up.set()
    assert await asyncio.wait_for(pending, 5) == [1, 2, 3], "an outage refuses nothing"
    assert writer.stalled_seconds == 0
    await writer.close()


async def test_close_gives_up_after_its_timeout_whatever_the_writer_is_doing() -> None:
    outage = Outage(Unavailable("down"))
    writer = make_writer(outage.write, max_size=10, max_delay_seconds=0.001, retry_initial_seconds=0.01)
    writer.start()
    stuck = [asyncio.ensure_future(writer.submit([i])) for i in range(3)]
    while not outage.failures:
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(writer.close(timeout=0.2), 5)
    assert loop.time() - started < 2
    for future in stuck:
        with pytest.raises(BatchWriterClosed):
            await future


async def test_close_cancels_a_write_that_hangs() -> None:
    async def hang(items: list[int]) -> list[int]:
        await asyncio.Event().wait()
        return items

    writer = make_writer(hang, max_delay_seconds=0.001)
    writer.start()
    stuck = asyncio.ensure_future(writer.submit([1]))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(writer.close(timeout=0.1), 5)
    with pytest.raises(BatchWriterClosed):
        await stuck
