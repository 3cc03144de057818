import pytest

from im.kits.timing_wheel import TimingWheel


def ticks_until_expired(wheel: TimingWheel[str], key: str, limit: int = 10_000) -> int:
    for tick in range(1, limit + 1):
        if key in wheel.advance():
            return tick
    raise AssertionError(f"{key} never expired")


def test_a_timer_expires_after_its_delay_rounded_up_to_ticks() -> None:
    wheel: TimingWheel[str] = TimingWheel(tick_seconds=0.5, slots=8)
    wheel.add("a", 1.2)
    assert ticks_until_expired(wheel, "a") == 3
    assert len(wheel) == 0


def test_delays_longer_than_a_revolution_wait_extra_rounds() -> None:
    wheel: TimingWheel[str] = TimingWheel(tick_seconds=1, slots=4)
    wheel.add("far", 11)
    assert ticks_until_expired(wheel, "far") == 11


def test_zero_delay_expires_on_the_next_tick() -> None:
    wheel: TimingWheel[str] = TimingWheel(tick_seconds=1, slots=4)
    wheel.add("now", 0)
    assert wheel.advance() == ["now"]


def test_cancelled_timers_never_expire() -> None:
    wheel: TimingWheel[str] = TimingWheel(tick_seconds=1, slots=4)
    wheel.add("a", 2)
    assert wheel.cancel("a") is True
    assert wheel.cancel("a") is False
    assert all(not wheel.advance() for _ in range(10))
    assert "a" not in wheel


def test_refresh_pushes_the_deadline_back() -> None:
    wheel: TimingWheel[str] = TimingWheel(tick_seconds=1, slots=4)
    wheel.add("a", 2)
    wheel.advance()
    wheel.refresh("a", 5)
    assert ticks_until_expired(wheel, "a") == 5


def test_keys_expire_in_deadline_order_and_same_tick_in_insertion_order() -> None:
    wheel: TimingWheel[int] = TimingWheel(tick_seconds=1, slots=16)
    delays = {1: 7, 2: 3, 3: 7, 4: 1, 5: 20, 6: 3}
    for key, delay in delays.items():
        wheel.add(key, delay)
    order = [key for _ in range(25) for key in wheel.advance()]
    assert order == [4, 2, 6, 1, 3, 5]


def test_a_hundred_thousand_timers() -> None:
    wheel: TimingWheel[int] = TimingWheel(tick_seconds=1, slots=512)
    count = 100_000
    for key in range(count):
        wheel.add(key, key % 1000 + 1)
    for key in range(0, count, 2):
        wheel.cancel(key)
    for key in range(1, count, 4):
        wheel.refresh(key, 2000)
    assert len(wheel) == count // 2
    expired_at: dict[int, int] = {}
    for tick in range(1, 2001):
        for key in wheel.advance():
            expired_at[key] = tick
    assert len(expired_at) == count // 2
    assert all(key % 2 == 1 for key in expired_at)
    for key, tick in expired_at.items():
        assert tick == (2000 if key % 4 == 1 else key % 1000 + 1)
    assert len(wheel) == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TimingWheel(tick_seconds=0)
    with pytest.raises(ValueError):
        TimingWheel(slots=0)
