import asyncio

import pytest

from im.logic.batch_writer import BatchWriter, BatchWriterClosed


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


async def test_a_full_batch_is_written_without_waiting_for_the_delay() -> None:
    recorder = Recorder()
    writer = BatchWriter(recorder.write, max_size=4, max_delay_seconds=60)
    writer.start()
    results = await asyncio.wait_for(asyncio.gather(*(writer.submit([i]) for i in range(4))), 5)
    assert results == [[0], [10], [20], [30]]
    assert recorder.batches == [[0, 1, 2, 3]]
    await writer.close()


async def test_a_partial_batch_is_written_after_the_delay() -> None:
    recorder = Recorder()
    writer = BatchWriter(recorder.write, max_size=100, max_delay_seconds=0.05)
    writer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await writer.submit([1, 2]) == [10, 20]
    assert loop.time() - started >= 0.04
    assert recorder.batches == [[1, 2]]
    await writer.close()


async def test_batches_keep_submission_order_and_never_exceed_the_size() -> None:
    recorder = Recorder()
    writer = BatchWriter(recorder.write, max_size=5, max_delay_seconds=0.01)
    writer.start()
    await asyncio.gather(*(writer.submit([2 * i, 2 * i + 1]) for i in range(20)))
    flat = [item for batch in recorder.batches for item in batch]
    assert flat == list(range(40))
    assert all(len(batch) <= 5 for batch in recorder.batches)
    await writer.close()


async def test_a_failed_write_keeps_the_batch_and_retries_it() -> None:
    recorder = Recorder(failures=3)
    errors: list[Exception] = []
    writer = BatchWriter(
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
    writer = BatchWriter(recorder.write, max_size=100, max_delay_seconds=60)
    writer.start()
    pending = asyncio.ensure_future(writer.submit([7]))
    await asyncio.sleep(0)
    await asyncio.wait_for(writer.close(), 5)
    assert await pending == [70]
    with pytest.raises(BatchWriterClosed):
        await writer.submit([8])
