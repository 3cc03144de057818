import pytest

from im.protocol.ratelimit import TokenBucket


def test_a_burst_is_allowed_then_the_rate_applies() -> None:
    bucket = TokenBucket(rate_per_second=10, burst=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.05) is False
    assert bucket.take(0.1) is True
    assert bucket.take(0.1) is False


def test_tokens_never_exceed_the_burst_after_a_quiet_spell() -> None:
    bucket = TokenBucket(rate_per_second=100, burst=3, now=0.0)
    assert sum(bucket.take(1000.0) for _ in range(10)) == 3


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1, 0.0)
    with pytest.raises(ValueError):
        TokenBucket(1, 0, 0.0)
